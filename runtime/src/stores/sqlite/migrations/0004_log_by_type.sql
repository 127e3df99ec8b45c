-- The log of some aggregate types (`read_all_of`: projections and the relay read only the
-- types they follow) is one ordered range of this index per type.
CREATE INDEX {events}_by_type ON {events} (aggregate_type, position);
