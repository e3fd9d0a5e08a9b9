//! Running a plan: the scheduler ([`scheduler`]: readiness, release of
//! intermediates, failure isolation, cancellation, cache admission) apart
//! from op dispatch ([`dispatch`]: what one node computes, handed to its
//! kernel), with cache reuse planned before the run ([`reuse`]), row and
//! column gathers ([`gather`]) and the worker pools ([`pool`]).

mod dispatch;
mod gather;
mod handoff;
mod pool;
mod reuse;
mod scheduler;

pub use gather::{hstack, select_cols, take_rows};
pub use handoff::run_watched;
pub use pool::{max_threads, pool, KEPT_POOLS};
pub use scheduler::{run, run_cached, Dataset, Failure, Outcome, Report};
