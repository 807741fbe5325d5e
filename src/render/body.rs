//! A webhook's own body (`body = '…'` on a webhook channel): a minijinja template over
//! the message, as the email templates see it (`alerts`, `kind`, `channel`, …), with
//! `tojson` to put any value into JSON safely. It is checked on sample messages of
//! every kind when the config loads, like the email templates.

use std::sync::Arc;

use minijinja::{Environment, UndefinedBehavior, Value};

use super::{MessageView, TemplateError, template_error};

const NAME: &str = "body";

/// A compiled body template.
#[derive(Clone)]
pub struct BodyTemplate {
    env: Arc<Environment<'static>>,
    source: String,
}

impl std::fmt::Debug for BodyTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BodyTemplate")
            .field("source", &self.source)
            .finish()
    }
}

impl PartialEq for BodyTemplate {
    fn eq(&self, other: &BodyTemplate) -> bool {
        self.source == other.source
    }
}

impl Eq for BodyTemplate {}

impl BodyTemplate {
    pub fn new(source: String) -> Result<BodyTemplate, TemplateError> {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.add_filter("tojson", to_json);
        env.add_template_owned(NAME, source.clone())
            .map_err(|e| template_error(NAME, &source, &e))?;
        let template = BodyTemplate {
            env: Arc::new(env),
            source,
        };
        for sample in MessageView::samples() {
            template.render(&sample)?;
        }
        Ok(template)
    }

    pub fn render(&self, view: &MessageView) -> Result<String, TemplateError> {
        let context = Value::from(minijinja::value::Serde(view));
        let template = self
            .env
            .get_template(NAME)
            .map_err(|e| template_error(NAME, "", &e))?;
        template
            .render(&context)
            .map_err(|e| template_error(NAME, template.source(), &e))
    }
}

/// `value | tojson`: the value as JSON. A misspelt name (an undefined value) is an
/// error, so that the sample messages at load catch it.
fn to_json(value: Value) -> Result<String, minijinja::Error> {
    use minijinja::{Error, ErrorKind};
    if value.is_undefined() {
        return Err(Error::new(
            ErrorKind::UndefinedError,
            "tojson of an undefined value",
        ));
    }
    serde_json::to_string(&value)
        .map_err(|e| Error::new(ErrorKind::InvalidOperation, e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::MessageKind;

    #[test]
    fn a_body_puts_feed_text_into_json_safely_and_mistakes_show_at_load() {
        let body = BodyTemplate::new(
            r#"{"text": {{ alerts[0].title | tojson }}, "n": {{ alerts | length }}}"#.into(),
        )
        .expect("valid");
        let mut alert = super::super::sample_alert(None);
        alert.title = "Lavrov said \"no\" \\ </script>".into();
        let view = MessageView::new(&MessageKind::Alert, "hook", &[alert.clone()]);
        let rendered = body.render(&view).expect("renders");
        let json: serde_json::Value = serde_json::from_str(&rendered).expect("valid JSON");
        assert_eq!(json["text"], alert.title.as_str());
        assert_eq!(json["n"], 1);
        for typo in ["{{ alerts[0].titel }}", "{{ alerts[0].titel | tojson }}"] {
            let err = BodyTemplate::new(typo.into()).expect_err("a typo");
            assert!(err.message.contains("undefined"), "{typo}: {err}");
        }
    }
}
