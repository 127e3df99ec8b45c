
#[test]
fn archive_is_decided() {
    use order_service::task::{Archive, Task};
    // Replace with the events `Archive` must record, given the events before it.
    cqrs_runtime::AggregateTest::<Task>::new()
        .when(Archive {
            reason: "x".to_owned(),
        })
        .then_expect_no_events();
}
