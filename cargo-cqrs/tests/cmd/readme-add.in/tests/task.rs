//! Tests of the task.
