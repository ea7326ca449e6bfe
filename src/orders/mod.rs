//! The orders, in db2 (see [`crate::db2`]): their model and queries.

mod model;
mod queries;
mod with_totals;

pub use model::{NewOrder, Order, OrderFilter, UserOrders};
pub use queries::{
    count_for_users, delete, delete_for_user, find, for_user, insert, new_order_lock, page,
    totals_disagreeing, user_orders_lock, users_with_orders, First, TotalsDisagreement,
    SUMMARY_ORDERS,
};
