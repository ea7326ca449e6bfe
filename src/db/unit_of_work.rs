//! Writes that span two databases.

use super::{blocking, Access, Database, DbError, Pool, Session};

/// One session on each of two databases, ended together.
///
/// `A` is the database whose rows the other refers to (users, in db1) and `B` the one
/// that refers to them (orders, in db2). Sessions are always begun A first, then B, in
/// every unit of work, so two of them never wait for each other in a cycle; and B is
/// committed before A, so that while A still holds its locks (the referenced rows) the
/// referencing writes become visible: at no moment can a reader see a reference to a
/// row that is gone.
///
/// A failure before the first commit rolls both back. A failure between the two commits
/// (B committed, A not) leaves B's part done; closing that window needs two-phase commit.
pub struct UnitOfWork<A: Database, B: Database> {
    pub referenced: Session<A>,
    pub referencing: Session<B>,
}

impl<A: Database, B: Database> UnitOfWork<A, B> {
    /// Begins write sessions on both databases, `A` first. Blocks.
    pub fn begin(a: &Pool<A>, b: &Pool<B>) -> Result<Self, DbError> {
        let referenced = a.begin(Access::Write)?;
        let referencing = b.begin(Access::Write)?;
        Ok(Self {
            referenced,
            referencing,
        })
    }

    /// Commits `B`, then `A`.
    pub fn commit(self) -> Result<(), DbError> {
        let Self {
            referenced,
            referencing,
        } = self;
        referencing.commit()?;
        referenced.commit()
    }
}

/// Runs `work` in a unit of work over `a` and `b` on a blocking thread, and commits it
/// if `work` returns `Ok`; an `Err` or a panic rolls both databases back.
pub async fn write_both<A, B, T, E, F>(a: &Pool<A>, b: &Pool<B>, work: F) -> Result<T, E>
where
    A: Database,
    B: Database,
    F: FnOnce(&mut UnitOfWork<A, B>) -> Result<T, E> + Send + 'static,
    T: Send + 'static,
    E: From<DbError> + Send + 'static,
{
    let (a, b) = (a.clone(), b.clone());
    blocking(move || {
        let mut unit = UnitOfWork::begin(&a, &b)?;
        let value = work(&mut unit)?;
        unit.commit()?;
        Ok(value)
    })
    .await
}
