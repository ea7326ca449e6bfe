//! Input types parsed once at the edge: everything behind the HTTP layer trusts them.
//! Each `parse` returns the rule that was broken, worded for the client.

mod excerpt;
mod ids;
mod text;

pub use excerpt::{prefix, Excerpt};
pub use ids::{integer, integral, AfterId, Limit, OrderId, ParseId, UserId};
pub use text::{Cents, Email, Quantity, Text};

mod page;
pub mod schema;
pub mod timestamp;

pub use page::Page;
