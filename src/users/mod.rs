//! The users, in db1 (see [`crate::db1`]): their model and queries.

mod model;
mod queries;

pub use model::{NewUser, User, UserChanges};
pub use queries::{
    delete, existing, find, insert, lock_existing, page, update, ById, First, WriteError,
};
