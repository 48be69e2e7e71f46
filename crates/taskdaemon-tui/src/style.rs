//! How states look: a colour per status and a symbol that still reads
//! without colour (`NO_COLOR`), plus the few accents the views share.

use ratatui::style::{Color, Modifier, Style};
use taskdaemon_core::Status;

/// Colours on or off (the `NO_COLOR` convention: any non-empty value turns them off).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Theme {
    pub color: bool,
}

impl Theme {
    /// Colours unless `NO_COLOR` is set to something non-empty.
    pub fn from_env() -> Self {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Self { color: !no_color }
    }

    pub fn status(self, status: Status) -> Style {
        if !self.color {
            return match status {
                Status::Failed | Status::Lost => Style::new().add_modifier(Modifier::BOLD),
                _ => Style::new(),
            };
        }
        Style::new().fg(match status {
            Status::Pending => Color::Yellow,
            Status::Blocked => Color::Magenta,
            Status::Running => Color::Green,
            Status::Succeeded => Color::Blue,
            Status::Failed | Status::Lost => Color::Red,
            Status::Cancelled => Color::DarkGray,
        })
    }

    /// The selected row: reversed, which reads in monochrome too.
    pub fn selected(self) -> Style {
        Style::new().add_modifier(Modifier::REVERSED)
    }

    pub fn header(self) -> Style {
        let style = Style::new().add_modifier(Modifier::BOLD);
        if self.color {
            style.fg(Color::Cyan)
        } else {
            style.add_modifier(Modifier::UNDERLINED)
        }
    }

    pub fn dim(self) -> Style {
        if self.color {
            Style::new().fg(Color::DarkGray)
        } else {
            Style::new()
        }
    }

    pub fn warn(self) -> Style {
        let style = Style::new().add_modifier(Modifier::BOLD);
        if self.color {
            style.fg(Color::Yellow)
        } else {
            style
        }
    }

    pub fn error(self) -> Style {
        let style = Style::new().add_modifier(Modifier::BOLD);
        if self.color {
            style.fg(Color::Red)
        } else {
            style
        }
    }

    pub fn ok(self) -> Style {
        if self.color {
            Style::new().fg(Color::Green)
        } else {
            Style::new()
        }
    }
}

/// A symbol per status, distinct in shape so it reads without colour.
pub fn status_symbol(status: Status) -> &'static str {
    match status {
        Status::Pending => "○",
        Status::Blocked => "◇",
        Status::Running => "▶",
        Status::Succeeded => "✔",
        Status::Failed => "✘",
        Status::Cancelled => "⊘",
        Status::Lost => "?",
    }
}

/// `▶ running`: the symbol and the word.
pub fn status_label(status: Status) -> String {
    format!("{} {status}", status_symbol(status))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_has_its_own_symbol() {
        let mut symbols: Vec<&str> = Status::ALL.iter().map(|s| status_symbol(*s)).collect();
        symbols.sort();
        symbols.dedup();
        assert_eq!(symbols.len(), Status::ALL.len());
    }

    #[test]
    fn no_color_styles_carry_no_colour() {
        let theme = Theme { color: false };
        for status in Status::ALL {
            assert_eq!(theme.status(status).fg, None, "{status}");
        }
        assert_eq!(theme.header().fg, None);
        assert!(Theme { color: true }.status(Status::Failed).fg.is_some());
    }
}
