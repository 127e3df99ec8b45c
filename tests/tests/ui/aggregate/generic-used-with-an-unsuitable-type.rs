//! A generic aggregate used with a type argument it is no aggregate for: one error, at the use.
//! The domain is the pass case `generic-aggregate-without-bounds`, as written.

include!("../../pass/generic-aggregate-without-bounds.rs");

pub fn shared_doors() {
    is_an_aggregate::<Door<std::rc::Rc<String>>>();
}
