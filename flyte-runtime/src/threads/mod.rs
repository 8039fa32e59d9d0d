//! Where sync bodies run: the process's pool of threads (`sync_pool`) and
//! a map's lane (`lane`), which runs its sync items on at most its width of
//! those threads. Below the live state, which holds a fan-out's lane.

pub(crate) mod lane;
pub(crate) mod sync_pool;
