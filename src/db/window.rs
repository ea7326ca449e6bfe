//! Window aggregates, which Diesel's query builder lacks. Written as expression types
//! with a static query id, so that queries using them are prepared once per connection
//! and reused, like any other Diesel query (raw `sql_query`/`sql` text never is).

use diesel::backend::Backend;
use diesel::expression::{
    is_aggregate, AppearsOnTable, Expression, SelectableExpression, ValidGrouping,
};
use diesel::query_builder::{AstPass, QueryFragment, QueryId};
use diesel::sql_types::BigInt;
use diesel::QueryResult;

/// `COUNT(*) OVER ()`: how many rows the query matches, computed before any `LIMIT`.
#[derive(Debug, Clone, Copy, QueryId)]
pub struct CountOver;

/// `CAST(SUM(expr) OVER () AS BIGINT)`: the sum over every row the query matches,
/// computed before any `LIMIT`. The cast gives one type on both backends (PostgreSQL's
/// `SUM(bigint)` is `NUMERIC`).
#[derive(Debug, Clone, Copy, QueryId)]
pub struct SumOver<E>(pub E);

impl Expression for CountOver {
    type SqlType = BigInt;
}

impl<E: Expression<SqlType = BigInt>> Expression for SumOver<E> {
    type SqlType = BigInt;
}

impl<DB: Backend> QueryFragment<DB> for CountOver {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        out.push_sql("COUNT(*) OVER ()");
        Ok(())
    }
}

impl<DB: Backend, E: QueryFragment<DB>> QueryFragment<DB> for SumOver<E> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        out.push_sql("CAST(SUM(");
        self.0.walk_ast(out.reborrow())?;
        out.push_sql(") OVER () AS BIGINT)");
        Ok(())
    }
}

// A window aggregate is evaluated per row, so it mixes with plain columns without a
// GROUP BY: to Diesel it is not an aggregate.
impl ValidGrouping<()> for CountOver {
    type IsAggregate = is_aggregate::No;
}

impl<E> ValidGrouping<()> for SumOver<E> {
    type IsAggregate = is_aggregate::No;
}

impl<QS> AppearsOnTable<QS> for CountOver {}
impl<QS> SelectableExpression<QS> for CountOver {}
impl<QS, E: AppearsOnTable<QS> + Expression<SqlType = BigInt>> AppearsOnTable<QS> for SumOver<E> {}
impl<QS, E: SelectableExpression<QS> + Expression<SqlType = BigInt>> SelectableExpression<QS>
    for SumOver<E>
{
}
