//! `SUM` as a `BIGINT` on every backend, which Diesel's `sum` is not: PostgreSQL's
//! `SUM(bigint)` is `NUMERIC`, MySQL's `DECIMAL`, and Diesel types them so. Written as
//! an expression type with a static query id, as [`super::window`]'s are, so that a query
//! using it is prepared once per connection.

use diesel::backend::Backend;
use diesel::expression::{
    is_aggregate, AppearsOnTable, Expression, SelectableExpression, ValidGrouping,
};
use diesel::mysql::Mysql;
use diesel::pg::Pg;
use diesel::query_builder::{AstPass, QueryFragment, QueryId};
use diesel::sql_types::BigInt;
use diesel::sqlite::Sqlite;
use diesel::QueryResult;

/// `CAST(SUM(expr) AS BIGINT)`: an aggregate, over a group or the whole query, of a
/// `BIGINT` column; `NULL` over no rows. The cast overflows where the sum does not fit,
/// as the column's own arithmetic would.
#[derive(Debug, Clone, Copy, QueryId)]
pub struct SumBigInt<E>(pub E);

impl<E: Expression<SqlType = BigInt>> Expression for SumBigInt<E> {
    type SqlType = diesel::sql_types::Nullable<BigInt>;
}

type AnyBackend = <crate::db::AnyConnection as diesel::Connection>::Backend;

impl<E> QueryFragment<AnyBackend> for SumBigInt<E>
where
    Self: QueryFragment<Pg> + QueryFragment<Sqlite> + QueryFragment<Mysql>,
{
    fn walk_ast<'b>(&'b self, out: AstPass<'_, 'b, AnyBackend>) -> QueryResult<()> {
        AnyBackend::walk_variant_ast(self, out)
    }
}

fn cast_sum<'b, DB: Backend, E: QueryFragment<DB>>(
    expr: &'b E,
    mut out: AstPass<'_, 'b, DB>,
    as_type: &str,
) -> QueryResult<()> {
    out.push_sql("CAST(SUM(");
    expr.walk_ast(out.reborrow())?;
    out.push_sql(") AS ");
    out.push_sql(as_type);
    out.push_sql(")");
    Ok(())
}

impl<E: QueryFragment<Pg>> QueryFragment<Pg> for SumBigInt<E> {
    fn walk_ast<'b>(&'b self, out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        cast_sum(&self.0, out, "BIGINT")
    }
}

impl<E: QueryFragment<Sqlite>> QueryFragment<Sqlite> for SumBigInt<E> {
    fn walk_ast<'b>(&'b self, out: AstPass<'_, 'b, Sqlite>) -> QueryResult<()> {
        cast_sum(&self.0, out, "BIGINT")
    }
}

impl<E: QueryFragment<Mysql>> QueryFragment<Mysql> for SumBigInt<E> {
    fn walk_ast<'b>(&'b self, out: AstPass<'_, 'b, Mysql>) -> QueryResult<()> {
        cast_sum(&self.0, out, "SIGNED")
    }
}

impl<E, GroupBy> ValidGrouping<GroupBy> for SumBigInt<E> {
    type IsAggregate = is_aggregate::Yes;
}

impl<QS, E: AppearsOnTable<QS> + Expression<SqlType = BigInt>> AppearsOnTable<QS> for SumBigInt<E> {}
impl<QS, E: SelectableExpression<QS> + Expression<SqlType = BigInt>> SelectableExpression<QS>
    for SumBigInt<E>
{
}
