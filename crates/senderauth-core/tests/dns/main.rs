//! The core against real DNS: test zones served over UDP and TCP on loopback.

mod burst;
mod cache;
mod checkdmarc;
mod return_path;
mod rfc7208;
mod support;
mod verify;
