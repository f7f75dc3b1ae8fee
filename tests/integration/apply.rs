//! The apply engine against the emulator.
