//! Secrets the config names instead of holding: a password or token read from a file
//! or from an environment variable, so that it stays out of the config file.

use std::path::Path;

use super::check::Checker;
use super::{ConfigError, KeyPath, Secret};

impl Checker<'_> {
    /// The secret at `file` (relative to the config's folder; one trailing newline
    /// dropped) or in the environment variable `env`: each given as its key's name
    /// and value. At most one of them may be set; neither is `None`.
    pub(super) fn read_secret(
        &self,
        table: KeyPath,
        (file_key, file): (&str, Option<&Path>),
        (env_key, env): (&str, Option<&str>),
        base: &Path,
    ) -> Result<Option<Secret>, ConfigError> {
        match (file, env) {
            (Some(_), Some(_)) => Err(self.invalid(
                table.key(env_key),
                format!("set {file_key} or {env_key}, not both"),
            )),
            (Some(path), None) => {
                let path = base.join(path);
                let key = table.key(file_key);
                let text = std::fs::read_to_string(&path).map_err(|e| {
                    self.invalid(key.clone(), format!("cannot read {}: {e}", path.display()))
                })?;
                let secret = text.trim_end_matches(['\r', '\n']);
                if secret.is_empty() {
                    return Err(self.invalid(key, format!("{} is empty", path.display())));
                }
                Ok(Some(Secret::new(secret.to_owned())))
            }
            (None, Some(var)) => {
                let key = table.key(env_key);
                let value = self.env.get(var).ok_or_else(|| {
                    self.invalid(
                        key.clone(),
                        format!("environment variable {var} is not set"),
                    )
                })?;
                if value.is_empty() {
                    return Err(self.invalid(key, format!("environment variable {var} is empty")));
                }
                Ok(Some(Secret::new(value.clone())))
            }
            (None, None) => Ok(None),
        }
    }

    /// A `username` with its password from `password_file` or `password_env` (in
    /// `table`): both or neither.
    pub(super) fn credentials(
        &self,
        table: KeyPath,
        username: Option<String>,
        (file, env): (Option<&Path>, Option<&str>),
        base: &Path,
    ) -> Result<Option<(String, Secret)>, ConfigError> {
        let password = self.read_secret(
            table.clone(),
            ("password_file", file),
            ("password_env", env),
            base,
        )?;
        match (username, password) {
            (Some(user), Some(password)) => Ok(Some((user, password))),
            (None, None) => Ok(None),
            (Some(_), None) => Err(self.invalid(
                table.key("username"),
                "a username needs password_file or password_env",
            )),
            (None, Some(_)) => Err(self.invalid(table, "a password is set but no username")),
        }
    }
}
