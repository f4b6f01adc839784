//! `aims user create|list|show|delete|passwd|disable|enable`: the users of the
//! authorization server's login page, through the admin socket.
//!
//! Passwords are read from standard input (first line) or from `--password-file`, never
//! from an option value, which other local users could read in the process list.

use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;

use aims_server::api::{NewUser, UserList, UserView};
use aims_server::client::{AdminClient, ClientError};
use anyhow::{Context, Result, anyhow, bail};
use clap::{Args, Subcommand};
use zeroize::Zeroizing;

use crate::cmd_entry::Conn;

#[derive(Debug, Subcommand)]
pub(crate) enum UserCommand {
    /// Create a user; the password comes from stdin or --password-file.
    Create(CreateArgs),
    /// List every user.
    List {
        #[command(flatten)]
        conn: Conn,
    },
    /// Show one user.
    Show {
        /// The user name.
        username: String,
        #[command(flatten)]
        conn: Conn,
    },
    /// Delete a user.
    Delete {
        /// The user name.
        username: String,
        #[command(flatten)]
        conn: Conn,
    },
    /// Set a new password (from stdin or --password-file).
    Passwd {
        /// The user name.
        username: String,
        #[command(flatten)]
        password: PasswordSource,
        #[command(flatten)]
        conn: Conn,
    },
    /// Disable a user: they can no longer log in.
    Disable {
        /// The user name.
        username: String,
        #[command(flatten)]
        conn: Conn,
    },
    /// Enable a disabled user.
    Enable {
        /// The user name.
        username: String,
        #[command(flatten)]
        conn: Conn,
    },
}

/// Where the password comes from.
#[derive(Debug, Args)]
pub(crate) struct PasswordSource {
    /// Read the password from this file's first line (default: standard input).
    #[arg(long, value_name = "FILE")]
    password_file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct CreateArgs {
    /// The user name (the `sub` of the tokens agents get for this user).
    username: String,
    /// Attributes, a JSON object, e.g. '{"name": "Alice", "email": "alice@example.org"}'.
    #[arg(long, value_name = "JSON")]
    attributes: Option<String>,
    #[command(flatten)]
    password: PasswordSource,
    #[command(flatten)]
    conn: Conn,
}

/// The first line of `text` without its line end.
fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or("")
}

fn read_password(src: &PasswordSource) -> Result<Zeroizing<String>> {
    let password = match &src.password_file {
        Some(path) => {
            let text = Zeroizing::new(
                std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read {}", path.display()))?,
            );
            Zeroizing::new(first_line(&text).to_owned())
        }
        None => {
            let stdin = std::io::stdin();
            if stdin.is_terminal() {
                eprint!("password (input is echoed; prefer --password-file): ");
                std::io::stderr().flush().ok();
            }
            let mut line = Zeroizing::new(String::new());
            stdin
                .lock()
                .read_line(&mut line)
                .context("cannot read the password from standard input")?;
            Zeroizing::new(first_line(&line).to_owned())
        }
    };
    if password.is_empty() {
        bail!("the password is empty: write it on standard input or in --password-file");
    }
    Ok(password)
}

fn explain(e: ClientError) -> anyhow::Error {
    match &e {
        ClientError::Api { status: 400, .. } => {
            anyhow!("{e}\npasswords need at least 12 characters; attributes must be a JSON object")
        }
        ClientError::Api { status: 404, .. } => anyhow!("{e}\n`aims user list` shows the users"),
        _ => crate::cmd_entry::explain(e),
    }
}

fn print_user(u: &UserView) {
    println!("user {}", u.username);
    println!(
        "  disabled        {}",
        if u.disabled { "yes" } else { "no" }
    );
    println!("  attributes      {}", u.attributes);
    println!("  created         {}", u.created_at);
    println!("  updated         {}", u.updated_at);
}

fn print_json<T: serde::Serialize>(v: &T) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

fn show(u: &UserView, json: bool) -> Result<ExitCode> {
    if json {
        print_json(u)?;
    } else {
        print_user(u);
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn run(cmd: &UserCommand) -> Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(async {
        match cmd {
            UserCommand::Create(a) => {
                let attributes = match &a.attributes {
                    Some(j) => serde_json::from_str::<serde_json::Value>(j)
                        .context("--attributes is not JSON")?,
                    None => serde_json::json!({}),
                };
                if !attributes.is_object() {
                    bail!("--attributes must be a JSON object, e.g. '{{\"name\": \"Alice\"}}'");
                }
                let password = read_password(&a.password)?;
                let u = AdminClient::new(&a.conn.admin_socket)
                    .create_user(&NewUser {
                        username: a.username.clone(),
                        password: password.to_string(),
                        attributes,
                    })
                    .await
                    .map_err(explain)?;
                show(&u, a.conn.json)
            }
            UserCommand::List { conn } => {
                let users = AdminClient::new(&conn.admin_socket)
                    .list_users()
                    .await
                    .map_err(explain)?;
                if conn.json {
                    print_json(&UserList { users })?;
                } else if users.is_empty() {
                    println!("no users; add one with `aims user create NAME < password-file`");
                } else {
                    println!("{:<32}  {:<8}  ATTRIBUTES", "USER", "DISABLED");
                    for u in &users {
                        println!(
                            "{:<32}  {:<8}  {}",
                            u.username,
                            if u.disabled { "yes" } else { "no" },
                            u.attributes
                        );
                    }
                }
                Ok(ExitCode::SUCCESS)
            }
            UserCommand::Show { username, conn } => {
                let u = AdminClient::new(&conn.admin_socket)
                    .get_user(username)
                    .await
                    .map_err(explain)?;
                show(&u, conn.json)
            }
            UserCommand::Delete { username, conn } => {
                AdminClient::new(&conn.admin_socket)
                    .delete_user(username)
                    .await
                    .map_err(explain)?;
                if !conn.json {
                    println!("deleted user {username}");
                }
                Ok(ExitCode::SUCCESS)
            }
            UserCommand::Passwd {
                username,
                password,
                conn,
            } => {
                let password = read_password(password)?;
                AdminClient::new(&conn.admin_socket)
                    .set_user_password(username, &password)
                    .await
                    .map_err(explain)?;
                if !conn.json {
                    println!("password of {username} changed");
                }
                Ok(ExitCode::SUCCESS)
            }
            UserCommand::Disable { username, conn } | UserCommand::Enable { username, conn } => {
                let disabled = matches!(cmd, UserCommand::Disable { .. });
                let u = AdminClient::new(&conn.admin_socket)
                    .set_user_disabled(username, disabled)
                    .await
                    .map_err(explain)?;
                show(&u, conn.json)
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_is_the_first_line() {
        assert_eq!(first_line("secret password\n"), "secret password");
        assert_eq!(first_line("secret password\r\nmore"), "secret password");
        assert_eq!(first_line(""), "");
    }
}
