//! An independent Marathon + Chronos emulator (`mesosync sandbox`). It must not reuse
//! the controller's normalizer or defaults tables. (Filled by issue #4.)
