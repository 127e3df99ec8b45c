//! The embedded templates (`templates/` in the repository), addressed by typed ids. A `.j2`
//! file is rendered with minijinja; any other file is copied as it is.

use minijinja::Environment;
use serde::Serialize;

use crate::error::Error;

/// One template of `cargo cqrs new`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Template {
    CargoToml,
    GitIgnore,
    Readme,
    Lib,
    Main,
    Config,
    Api,
    Task,
    Projections,
    TaskTests,
    Bus,
}

impl Template {
    /// The templates of a service with an event bus (`--bus`), besides [`ALL`](Self::ALL).
    pub const BUS: [Template; 1] = [Template::Bus];

    /// Every template of a new service.
    pub const ALL: [Template; 10] = [
        Template::CargoToml,
        Template::GitIgnore,
        Template::Readme,
        Template::Lib,
        Template::Main,
        Template::Config,
        Template::Api,
        Template::Task,
        Template::Projections,
        Template::TaskTests,
    ];

    /// The template's path under `templates/new/` and its text.
    pub fn source(self) -> (&'static str, &'static str) {
        macro_rules! t {
            ($path:literal) => {
                ($path, include_str!(concat!("../../templates/new/", $path)))
            };
        }
        match self {
            Template::CargoToml => t!("Cargo.toml.j2"),
            Template::GitIgnore => t!("gitignore"),
            Template::Readme => t!("README.md.j2"),
            Template::Lib => t!("src/lib.rs.j2"),
            Template::Main => t!("src/main.rs.j2"),
            Template::Config => t!("src/config.rs.j2"),
            Template::Api => t!("src/api.rs"),
            Template::Task => t!("src/task.rs"),
            Template::Projections => t!("src/projections.rs"),
            Template::TaskTests => t!("tests/task.rs.j2"),
            Template::Bus => t!("src/bus.rs.j2"),
        }
    }

    /// Where the rendered file goes in the new crate.
    pub fn target(self) -> String {
        let (path, _) = self.source();
        match self {
            Template::GitIgnore => ".gitignore".to_owned(),
            _ => path.strip_suffix(".j2").unwrap_or(path).to_owned(),
        }
    }

    /// The file's content for `context`.
    pub fn render(self, context: &impl Serialize) -> Result<String, Error> {
        let (path, text) = self.source();
        if !path.ends_with(".j2") {
            return Ok(text.to_owned());
        }
        render_str(path, text, context)
    }
}

/// Renders a template text; a mistake in it names the template.
pub fn render_str(name: &str, text: &str, context: &impl Serialize) -> Result<String, Error> {
    let mut env = Environment::new();
    env.set_keep_trailing_newline(true);
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    env.render_str(text, context).map_err(|e| Error::Template {
        template: name.to_owned(),
        why: e.to_string(),
    })
}
