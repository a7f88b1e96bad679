//! Fixture builders shared by infoledger tests, the demo and the benchmark.
