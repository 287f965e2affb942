//! outpost-conf: reads `zoo.cfg`, its dynamic file and `myid` exactly as Apache ZooKeeper 3.8 does,
//! and validates them with errors that name the file, the line and the key.
