//! A virtualised list: a selection and a scroll offset over rows that are
//! never all rendered. A view asks for the window of rows that fits its
//! height and renders only those, so 100,000 rows cost what 40 do.

/// Selection and scroll position of one list.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ListState {
    pub selected: usize,
    /// The first row shown.
    pub offset: usize,
}

impl ListState {
    /// Moves the selection by `delta` rows, kept inside `len` rows.
    pub fn move_by(&mut self, delta: isize, len: usize) {
        if len == 0 {
            self.selected = 0;
            return;
        }
        let target = self.selected as isize + delta;
        self.selected = target.clamp(0, len as isize - 1) as usize;
    }

    pub fn first(&mut self) {
        self.selected = 0;
    }

    pub fn last(&mut self, len: usize) {
        self.selected = len.saturating_sub(1);
    }

    /// Keeps the selection inside `len` rows after the rows changed.
    pub fn clamp(&mut self, len: usize) {
        self.selected = self.selected.min(len.saturating_sub(1));
    }

    /// The rows to render in a viewport of `height` rows: scrolls just
    /// enough to keep the selection visible. Returns `offset..end`.
    pub fn window(&mut self, len: usize, height: usize) -> std::ops::Range<usize> {
        self.clamp(len);
        if height == 0 || len == 0 {
            self.offset = 0;
            return 0..0;
        }
        if self.selected < self.offset {
            self.offset = self.selected;
        } else if self.selected >= self.offset + height {
            self.offset = self.selected + 1 - height;
        }
        self.offset = self.offset.min(len.saturating_sub(height));
        self.offset..(self.offset + height).min(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_follows_the_selection_and_never_passes_the_end() {
        let mut list = ListState::default();
        assert_eq!(list.window(100_000, 10), 0..10);
        list.move_by(15, 100_000);
        assert_eq!(list.window(100_000, 10), 6..16);
        list.move_by(-12, 100_000);
        assert_eq!(list.window(100_000, 10), 3..13);
        list.last(100_000);
        assert_eq!(list.window(100_000, 10), 99_990..100_000);
        // The rows shrank under the selection.
        assert_eq!(list.window(5, 10), 0..5);
        assert_eq!(list.selected, 4);
        assert_eq!(list.window(0, 10), 0..0);
    }

    #[test]
    fn moves_stay_inside_the_rows() {
        let mut list = ListState::default();
        list.move_by(-3, 10);
        assert_eq!(list.selected, 0);
        list.move_by(30, 10);
        assert_eq!(list.selected, 9);
        list.move_by(1, 0);
        assert_eq!(list.selected, 0);
    }
}
