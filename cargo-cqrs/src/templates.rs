//! The one template registry: every file and snippet `cargo cqrs` writes (`templates/` in the
//! repository), embedded at build time and addressed by a typed id. A `.j2` file is rendered
//! with minijinja (strict: an undefined variable is an error); any other file is copied as it
//! is. Each template that has a context of its own is tied to it by [`Render`], so a context
//! can only be rendered into the template it was written for.

use minijinja::Environment;
use serde::Serialize;

use crate::error::Error;

/// One template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Template {
    // `cargo cqrs new`: a service crate.
    CargoToml,
    GitIgnore,
    Readme,
    Lib,
    Main,
    Config,
    Api,
    Service,
    OpenApi,
    Task,
    Projections,
    TaskTests,
    Bus,
    // `cargo cqrs add aggregate|projection`: new files.
    AddAggregate,
    AddAggregateTest,
    AddProjection,
    AddProjectionTest,
    AddProcessManager,
    AddProcessManagerTest,
    // `cargo cqrs add event|command`: snippets injected into an aggregate's module and tests.
    Payload,
    Variant,
    Applier,
    Handler,
    EventTest,
    CommandTest,
    // `cargo cqrs strimzi`.
    Strimzi,
    // `cargo cqrs deploy`.
    Dockerfile,
    Kubernetes,
    // The program `cargo cqrs schema` links with a crate.
    HostMain,
}

impl Template {
    /// The templates of a service with an event bus (`--bus`), besides [`NEW`](Self::NEW).
    pub const BUS: [Template; 1] = [Template::Bus];

    /// Every template of a new service.
    pub const NEW: [Template; 12] = [
        Template::CargoToml,
        Template::GitIgnore,
        Template::Readme,
        Template::Lib,
        Template::Main,
        Template::Config,
        Template::Api,
        Template::Service,
        Template::OpenApi,
        Template::Task,
        Template::Projections,
        Template::TaskTests,
    ];

    /// The templates besides those of `new` (for the tests, which go through them all).
    #[cfg(test)]
    pub const OTHERS: [Template; 17] = [
        Template::Bus,
        Template::AddAggregate,
        Template::AddAggregateTest,
        Template::AddProjection,
        Template::AddProjectionTest,
        Template::AddProcessManager,
        Template::AddProcessManagerTest,
        Template::Payload,
        Template::Variant,
        Template::Applier,
        Template::Handler,
        Template::EventTest,
        Template::CommandTest,
        Template::Strimzi,
        Template::Dockerfile,
        Template::Kubernetes,
        Template::HostMain,
    ];

    /// The template's path under `templates/` and its text.
    pub fn source(self) -> (&'static str, &'static str) {
        macro_rules! t {
            ($path:literal) => {
                ($path, include_str!(concat!("../templates/", $path)))
            };
        }
        match self {
            Template::CargoToml => t!("new/Cargo.toml.j2"),
            Template::GitIgnore => t!("new/gitignore"),
            Template::Readme => t!("new/README.md.j2"),
            Template::Lib => t!("new/src/lib.rs.j2"),
            Template::Main => t!("new/src/main.rs.j2"),
            Template::Config => t!("new/src/config.rs.j2"),
            Template::Api => t!("new/src/api.rs"),
            Template::Service => t!("new/src/service.rs"),
            Template::OpenApi => t!("new/src/openapi.rs"),
            Template::Task => t!("new/src/task.rs"),
            Template::Projections => t!("new/src/projections.rs"),
            Template::TaskTests => t!("new/tests/task.rs.j2"),
            Template::Bus => t!("new/src/bus.rs.j2"),
            Template::AddAggregate => t!("add/aggregate.rs.j2"),
            Template::AddAggregateTest => t!("add/aggregate_test.rs.j2"),
            Template::AddProjection => t!("add/projection.rs.j2"),
            Template::AddProjectionTest => t!("add/projection_test.rs.j2"),
            Template::AddProcessManager => t!("add/process_manager.rs.j2"),
            Template::AddProcessManagerTest => t!("add/process_manager_test.rs.j2"),
            Template::Payload => t!("add/snippets/payload.rs.j2"),
            Template::Variant => t!("add/snippets/variant.rs.j2"),
            Template::Applier => t!("add/snippets/applier.rs.j2"),
            Template::Handler => t!("add/snippets/handler.rs.j2"),
            Template::EventTest => t!("add/snippets/event_test.rs.j2"),
            Template::CommandTest => t!("add/snippets/command_test.rs.j2"),
            Template::Strimzi => t!("strimzi/strimzi.yaml.j2"),
            Template::Dockerfile => t!("deploy/Dockerfile.j2"),
            Template::Kubernetes => t!("deploy/kubernetes.yaml.j2"),
            Template::HostMain => t!("schema-host/main.rs"),
        }
    }

    /// Where a template of `cargo cqrs new` goes in the new crate.
    pub fn target(self) -> String {
        let (path, _) = self.source();
        let path = path.strip_prefix("new/").unwrap_or(path);
        match self {
            Template::GitIgnore => ".gitignore".to_owned(),
            _ => path.strip_suffix(".j2").unwrap_or(path).to_owned(),
        }
    }

    /// The file's content for `context`; a mistake in the template is an [`Error::Template`]
    /// naming it.
    pub fn render(self, context: &impl Serialize) -> Result<String, Error> {
        let (path, text) = self.source();
        if !path.ends_with(".j2") {
            return Ok(text.to_owned());
        }
        let mut env = Environment::new();
        env.set_keep_trailing_newline(true);
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
        env.render_str(text, context).map_err(|e| Error::Template {
            template: path.to_owned(),
            why: e.to_string(),
        })
    }
}

/// A context written for one template.
pub trait Render: Serialize + Sized {
    /// The template it fills.
    const TEMPLATE: Template;

    /// The rendered text.
    fn render(&self) -> Result<String, Error> {
        Self::TEMPLATE.render(self)
    }
}

/// A context of no variables, for the templates that take none.
#[derive(Debug, Serialize)]
pub struct NoContext {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_is_embedded_and_parses() {
        for template in Template::NEW.into_iter().chain(Template::OTHERS) {
            let (path, text) = template.source();
            assert!(!text.is_empty(), "{path} is empty");
            if path.ends_with(".j2") {
                let mut env = Environment::new();
                env.add_template(path, text)
                    .unwrap_or_else(|e| panic!("{path} does not parse: {e}"));
            }
        }
    }

    #[test]
    fn a_missing_variable_is_an_error_naming_the_template() {
        let error = Template::Variant.render(&NoContext {}).unwrap_err();
        let message = error.to_string();
        assert!(message.contains("add/snippets/variant.rs.j2"), "{message}");
    }
}
