//! The request a piece of code runs for, wherever it runs: on the request's own task, or
//! on a blocking thread doing its database work. The log format reads its id, so that
//! every line written on a request's behalf — a database layer's warning as much as the
//! request's own line — names the request, without the id being passed through every
//! function that might log. Routing notes in it which route the request matched.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::rc::Rc;
use std::sync::Arc;

/// What is known about the request being served, shared by its task.
pub struct Request {
    id: Arc<str>,
    route: Cell<Option<&'static str>>,
}

impl Request {
    pub fn new(id: Arc<str>) -> Rc<Self> {
        Rc::new(Self {
            id,
            route: Cell::new(None),
        })
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// The template of the route the request matched, once routed; `None` if it
    /// matched none.
    pub fn route(&self) -> Option<&'static str> {
        self.route.get()
    }
}

tokio::task_local! {
    static ON_TASK: Rc<Request>;
}

thread_local! {
    static ON_THREAD: RefCell<Option<Arc<str>>> = const { RefCell::new(None) };
}

/// Runs `future` as `request`'s.
pub async fn scope<F: Future>(request: Rc<Request>, future: F) -> F::Output {
    ON_TASK.scope(request, future).await
}

/// Notes the route the current request matched (called by routing, on the request's task).
pub fn matched(template: &'static str) {
    let _ = ON_TASK.try_with(|request| request.route.set(Some(template)));
}

/// Calls `f` with the current request's id, if the code runs for one.
pub fn with_current<T>(f: impl FnOnce(Option<&str>) -> T) -> T {
    match ON_TASK.try_with(|request| request.id.clone()) {
        Ok(id) => f(Some(&id)),
        Err(_) => ON_THREAD.with(|id| f(id.borrow().as_deref())),
    }
}

/// `work`, made to run as the current request's on whichever thread calls it.
pub fn carry<T>(work: impl FnOnce() -> T) -> impl FnOnce() -> T {
    let id = ON_TASK.try_with(|request| request.id.clone()).ok();
    move || {
        let _entered = Entered::new(id);
        work()
    }
}

/// Sets the thread's request for as long as it lives: also while unwinding from a panic,
/// so that the thread's next job does not inherit it.
pub(crate) struct Entered {
    previous: Option<Arc<str>>,
}

impl Entered {
    pub(crate) fn new(id: Option<Arc<str>>) -> Self {
        let previous = ON_THREAD.with(|current| current.replace(id));
        Self { previous }
    }
}

impl Drop for Entered {
    fn drop(&mut self) {
        let previous = self.previous.take();
        ON_THREAD.with(|current| *current.borrow_mut() = previous);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn current() -> Option<String> {
        with_current(|id| id.map(str::to_owned))
    }

    #[test]
    fn work_carried_to_another_thread_runs_as_the_request_and_leaves_it_behind() {
        let (inside, after) =
            actix_web::rt::System::new().block_on(scope(Request::new(Arc::from("req-1")), async {
                let work = carry(current);
                std::thread::spawn(move || {
                    let inside = work();
                    (inside, current())
                })
                .join()
                .unwrap()
            }));
        assert_eq!(inside.as_deref(), Some("req-1"));
        assert_eq!(after, None);
        assert_eq!(current(), None);
    }

    #[test]
    fn a_panicking_job_gives_the_thread_back_as_it_found_it() {
        let _outer = Entered::new(Some(Arc::from("outer")));
        let outcome = std::panic::catch_unwind(|| {
            let _job = Entered::new(Some(Arc::from("job")));
            assert_eq!(current().as_deref(), Some("job"));
            panic!("the job fails");
        });
        assert!(outcome.is_err());
        assert_eq!(current().as_deref(), Some("outer"));
    }
}
