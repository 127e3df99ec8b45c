
#[test]
fn archive_is_decided() {
    use order_service::task::*;
    // Refused on a Task never created. Give its creating event with `.given(...)`, then
    // replace with the events `Archive` must record.
    cqrs_runtime::AggregateTest::<Task>::new()
        .when(Archive {
            reason: "x".to_owned(),
        })
        .then_expect_error(TaskError::NotFound);
}
