use anyhow::Context;
use clap::{Parser, Subcommand};
use multidb::api_keys::command as keys;
use multidb::app::{Application, Pools};
use multidb::config::Settings;
use multidb::operator::{check, migrations};
use multidb::telemetry::{init_logging, LogFormat};

/// One REST API over two databases, kept consistent with each other.
///
/// Settings come from the environment and ./.env (DATABASE_URL_1, DATABASE_URL_2,
/// BIND_ADDRESS, …); see README.md, "Configuration".
#[derive(Parser)]
#[command(name = "multidb", version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP server (the default)
    Serve,
    /// Apply the pending migrations of both databases, then exit
    #[command(args_conflicts_with_subcommands = true)]
    Migrate {
        /// Print what would be applied, and apply nothing
        #[arg(long)]
        dry_run: bool,
        #[command(subcommand)]
        command: Option<MigrateCommand>,
    },
    /// Check that the two databases agree; reads only. Exit status: 0 when all is well,
    /// 1 when problems were found (listed), 3 when a database could not be checked
    Check {
        /// The report as one JSON object, for monitoring
        #[arg(long)]
        json: bool,
        /// Seconds after which a cross-database write still in doubt is a problem
        #[arg(long, default_value_t = 60, value_name = "SECONDS")]
        in_doubt_after: u64,
        /// Users looked up per step of the scan of orders: smaller steps make shorter
        /// queries
        #[arg(long, default_value_t = 1000, value_name = "USERS", value_parser = clap::value_parser!(i64).range(1..=100_000))]
        batch: i64,
    },
    /// Manage API keys, on the database the server uses
    Keys {
        #[command(subcommand)]
        command: keys::KeysCommand,
    },
}

#[derive(Subcommand)]
enum MigrateCommand {
    /// Show each database's migrations, applied and pending; changes nothing
    Status {
        /// One JSON array, a database an element, for scripts
        #[arg(long)]
        json: bool,
    },
}

fn main() {
    let code = run();
    exit_now(code)
}

/// Ends the process without running exit handlers. r2d2 keeps its pools' idle minimum
/// by opening connections on threads of its own, which nothing joins; when the process
/// exited normally while one of them was in a TLS handshake, OpenSSL's exit handler
/// crashed it (SIGSEGV in about one start-up failure in six, measured with a second URL
/// that names a missing database). Everything worth keeping is already written:
/// commits are durable before they are answered, and stderr is unbuffered.
fn exit_now(status: i32) -> ! {
    use std::io::Write;
    let _ = std::io::stdout().flush();
    // SAFETY: `_exit` ends the process at once; no Rust state is observed afterwards.
    unsafe { libc::_exit(status) }
}

const SUCCESS: i32 = 0;
const FAILURE: i32 = 1;
const USAGE_ERROR: i32 = 2;
/// `multidb check` found the databases in disagreement.
const PROBLEMS_FOUND: i32 = 1;
/// `multidb check` could not look (a database unreachable).
const CANNOT_CHECK: i32 = 3;

/// The process's exit status.
fn run() -> i32 {
    // Before the settings: `--help` and a mistyped command need no database.
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            // Help and version on stdout with 0; a usage error on stderr with 2.
            let _ = error.print();
            return error.exit_code();
        }
    };
    if let Err(error) = dotenvy::dotenv() {
        if !error.not_found() {
            eprintln!("multidb: cannot read .env: {error}");
            return FAILURE;
        }
    }
    match LogFormat::from_env() {
        Ok(format) => init_logging(format),
        Err(error) => return fail(error),
    }
    let settings = match Settings::from_env() {
        Ok(settings) => settings,
        Err(error) => return fail(error),
    };
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(settings),
        Command::Migrate {
            command: Some(MigrateCommand::Status { json }),
            ..
        } => match migrations::status(&settings) {
            Ok(databases) if json => print_json(&databases),
            Ok(databases) => {
                print!("{}", migrations::status_text(&databases));
                SUCCESS
            }
            Err(error) => fail(one_line(&error)),
        },
        Command::Migrate { dry_run: true, .. } => match migrations::status(&settings) {
            Ok(databases) => {
                print!("{}", migrations::dry_run_text(&databases));
                SUCCESS
            }
            Err(error) => fail(one_line(&error)),
        },
        // Migrations only: no lease, no recovery.
        Command::Migrate { .. } => match Pools::connect(
            &Settings {
                run_migrations: true,
                ..settings
            },
            &metrics::NoopRecorder,
        ) {
            Ok(_) => SUCCESS,
            Err(error) => fail(one_line(&error)),
        },
        Command::Check {
            json,
            in_doubt_after,
            batch,
        } => {
            let options = check::Options {
                in_doubt_after: std::time::Duration::from_secs(in_doubt_after),
                batch,
                ..check::Options::default()
            };
            match check::run(&settings, options) {
                Ok(report) => {
                    if json {
                        print_json(&report);
                    } else {
                        print!("{}", check::text(&report));
                    }
                    if report.healthy {
                        SUCCESS
                    } else {
                        PROBLEMS_FOUND
                    }
                }
                Err(error) => {
                    eprintln!("multidb: cannot check: {}", one_line(&error));
                    CANNOT_CHECK
                }
            }
        }
        Command::Keys { command } => match keys::run(&settings, command) {
            Ok(output) => {
                print!("{output}");
                SUCCESS
            }
            Err(error @ keys::CommandError::Usage(_)) => {
                eprintln!("multidb: {error}");
                USAGE_ERROR
            }
            Err(error) => fail(error),
        },
    }
}

fn serve(settings: Settings) -> i32 {
    let outcome = actix_web::rt::System::new().block_on(async move {
        let app = Application::build(&settings)?;
        app.run_until_stopped().await.context("serving")
    });
    match outcome {
        Ok(()) => {
            log::info!("stopped");
            SUCCESS
        }
        Err(error) => fail(one_line(&error)),
    }
}

/// The error and each of its causes (libpq's span lines), as the one line printed.
fn one_line(error: &anyhow::Error) -> String {
    multidb::db::chain(error.as_ref())
}

fn print_json(value: &impl serde::Serialize) -> i32 {
    match serde_json::to_string_pretty(value) {
        Ok(text) => {
            println!("{text}");
            SUCCESS
        }
        Err(error) => fail(error),
    }
}

fn fail(error: impl std::fmt::Display) -> i32 {
    eprintln!("multidb: {error}");
    FAILURE
}
