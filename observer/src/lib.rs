//! outpost-observer: the observer role (a non-voting learner that serves reads in a remote datacenter)
//! and the observer-master service that lets followers feed observers.
//!
//! Not built yet: see issue "Observers for remote datacenters".
