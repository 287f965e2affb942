//! The ZAB ensemble engine, sans-IO: quorum rules, votes, fast leader election, a deterministic
//! simulator that runs many election engines over a faulty virtual network, and the leader's learner
//! sync decision (`learner_sync`: DIFF / TRUNC / SNAP over the committed log).
//!
//! Discovery, the rest of synchronisation and broadcast (the learner protocol) will join these modules; see
//! `docs/zab.md` for the vocabulary, the election engine's contract with its driver and what is
//! left to build. Nothing here touches sockets, disks or clocks: time is `now_ms`, randomness is a
//! seed.

pub mod election;
pub mod learner_sync;
pub mod quorum;
pub mod rng;
pub mod sim;

pub mod vote;

#[cfg(test)]
mod learner_sync_tests;
