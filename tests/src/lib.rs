//! Support for the fixture-driven tests.
