//! The ZAB ensemble engine, sans-IO: quorum rules, votes, fast leader election, the leader's learner
//! sync decision (`learner_sync`: DIFF / TRUNC / SNAP over the committed log), the quorum peer with its
//! leader and learner roles (discovery, learner sync, broadcast), what a learner master keeps per learner
//! link (`learner_link`: counters, observer lag, sync throttles, SNAP streaming), and two deterministic
//! simulators: one
//! for elections alone (`sim`), one for whole ensembles with clients, disks and crashes
//! (`cluster_sim`).
//!
//! See `docs/zab.md` for the vocabulary and each engine's contract with its driver. Nothing here
//! touches sockets, disks or clocks: time is `now_ms`, randomness is a seed.

pub mod cluster_sim;
pub mod election;
pub mod leader;
pub mod learner;
pub mod learner_link;
pub mod learner_sync;
pub mod observer_master;
pub mod peer;
pub mod quorum;
pub mod reconfig;
pub mod rng;
pub mod sim;
pub mod vote;

#[cfg(test)]
mod learner_sync_tests;
