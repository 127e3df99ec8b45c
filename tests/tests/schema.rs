//! Schema metadata is collected from a crate's derived aggregates with no registry written by
//! hand: the bank example's aggregate shows up through the link-time registry.

#[test]
fn derived_aggregates_register_themselves() {
    // Referencing the crate links it; its registrations come with it.
    let _ = bank::ACCOUNT_TYPE;
    let all = cqrs_runtime::schema::aggregates();
    let account = all
        .iter()
        .find(|a| a.aggregate_type == "bank_account")
        .unwrap_or_else(|| panic!("bank_account not registered; found {all:?}"));
    assert_eq!(account.rust_type, "bank::Account");
    let commands: Vec<&str> = account.commands.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(commands, ["Open", "Deposit", "Withdraw", "Close"]);
    let events: Vec<(&str, u32)> = account
        .events
        .iter()
        .map(|e| (e.event_type.as_str(), e.version))
        .collect();
    assert_eq!(
        events,
        [
            ("AccountOpened", 1),
            ("Deposited", 3),
            ("Withdrawn", 2),
            ("Closed", 1)
        ]
    );
    let deposit = &account.events[1];
    assert_eq!(
        deposit.versions[0].schema.as_ref().unwrap()["properties"]["euros"]["type"],
        "integer"
    );
    let json = serde_json::to_value(account).unwrap();
    assert_eq!(json["events"][1]["versions"][1]["upcast"], "function");
    assert_eq!(json["events"][2]["versions"][0]["upcast"], "json");
}

#[test]
fn the_list_is_sorted_and_has_no_duplicates() {
    let _ = bank::ACCOUNT_TYPE;
    let all = cqrs_runtime::schema::aggregates();
    let names: Vec<&str> = all.iter().map(|a| a.aggregate_type.as_str()).collect();
    let mut sorted = names.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(names, sorted);
}
