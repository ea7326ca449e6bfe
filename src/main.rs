use std::process::ExitCode;

use anyhow::Context;
use multidb::app::{Application, Databases};
use multidb::config::Settings;

const USAGE: &str = "usage: multidb [serve | migrate]
  serve    run the HTTP server (the default)
  migrate  apply pending migrations to both databases and exit
Settings come from the environment and ./.env; see README.md.";

fn main() -> ExitCode {
    if let Err(error) = dotenvy::dotenv() {
        if !error.not_found() {
            eprintln!("multidb: cannot read .env: {error}");
            return ExitCode::FAILURE;
        }
    }
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();

    let command = std::env::args().nth(1);
    let settings = match Settings::from_env() {
        Ok(settings) => settings,
        Err(error) => return fail(error),
    };
    match command.as_deref() {
        None | Some("serve") => serve(settings),
        Some("migrate") => match Databases::connect(&Settings {
            run_migrations: true,
            ..settings
        }) {
            Ok(_) => ExitCode::SUCCESS,
            Err(error) => fail(one_line(&error)),
        },
        Some("-h" | "--help" | "help") => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        Some(other) => {
            eprintln!("multidb: unknown command `{other}`\n{USAGE}");
            ExitCode::from(2)
        }
    }
}

fn serve(settings: Settings) -> ExitCode {
    let outcome = actix_web::rt::System::new().block_on(async move {
        let app = Application::build(&settings)?;
        app.run_until_stopped().await.context("serving")
    });
    match outcome {
        Ok(()) => {
            log::info!("stopped");
            ExitCode::SUCCESS
        }
        Err(error) => fail(one_line(&error)),
    }
}

/// The error and each of its causes (libpq's span lines), as the one line printed.
fn one_line(error: &anyhow::Error) -> String {
    multidb::db::chain(error.as_ref())
}

fn fail(error: impl std::fmt::Display) -> ExitCode {
    eprintln!("multidb: {error}");
    ExitCode::FAILURE
}
