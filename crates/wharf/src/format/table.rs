//! Go's `text/tabwriter` as docker's formatter configures it (`NewWriter(out, 10, 1, 3, ' ', 0)`:
//! minwidth 10, padding 3, spaces), so table output lines up byte for byte with docker's.
//!
//! Go's algorithm: cells are tab-terminated; the text after a line's last tab is not part of any
//! column. A column block is a run of consecutive lines that all have a cell in that column, and
//! each block gets its own width, so the header and rows align while later unrelated lines
//! do not.

pub struct TabWriter {
    minwidth: usize,
    padding: usize,
}

impl Default for TabWriter {
    fn default() -> Self {
        TabWriter {
            minwidth: 10,
            padding: 3,
        }
    }
}

impl TabWriter {
    pub fn new(minwidth: usize, padding: usize) -> TabWriter {
        TabWriter { minwidth, padding }
    }

    /// Aligns all of `text` (what Go writes before `Flush`).
    pub fn format(&self, text: &str) -> String {
        let trailing_newline = text.ends_with('\n');
        let body = text.strip_suffix('\n').unwrap_or(text);
        let lines: Vec<Vec<&str>> = body.split('\n').map(|l| l.split('\t').collect()).collect();
        let mut out = String::new();
        let mut widths = Vec::new();
        self.block(&lines, 0, lines.len(), &mut widths, &mut out);
        if !trailing_newline {
            out.pop();
        }
        out
    }

    fn block(
        &self,
        lines: &[Vec<&str>],
        mut line0: usize,
        line1: usize,
        widths: &mut Vec<usize>,
        out: &mut String,
    ) {
        let column = widths.len();
        let mut this = line0;
        while this < line1 {
            if column + 1 >= lines[this].len() {
                this += 1;
                continue;
            }
            write_lines(lines, line0, this, widths, out);
            line0 = this;
            let mut width = self.minwidth;
            while this < line1 && column + 1 < lines[this].len() {
                width = width.max(display_width(lines[this][column]) + self.padding);
                this += 1;
            }
            widths.push(width);
            self.block(lines, line0, this, widths, out);
            widths.pop();
            line0 = this;
        }
        write_lines(lines, line0, line1, widths, out);
    }
}

fn write_lines(lines: &[Vec<&str>], from: usize, to: usize, widths: &[usize], out: &mut String) {
    for line in &lines[from..to] {
        for (j, cell) in line.iter().enumerate() {
            out.push_str(cell);
            if j + 1 < line.len() && j < widths.len() {
                let pad = widths[j].saturating_sub(display_width(cell));
                out.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push('\n');
    }
}

fn display_width(s: &str) -> usize {
    s.chars().count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_ps_header() {
        let t = TabWriter::default();
        let got = t.format(
            "CONTAINER ID\tIMAGE\tCOMMAND\tCREATED\tSTATUS\tPORTS\tNAMES\n\
             0123456789ab\tbusybox\t\"sleep 300\"\t2 seconds ago\tUp 1 second\t\tweb\n",
        );
        let want = "CONTAINER ID   IMAGE     COMMAND       CREATED         STATUS        PORTS     NAMES\n\
                    0123456789ab   busybox   \"sleep 300\"   2 seconds ago   Up 1 second             web\n";
        assert_eq!(got, want);
    }

    #[test]
    fn header_only() {
        let got = TabWriter::default().format("REPOSITORY\tTAG\tIMAGE ID\tCREATED\tSIZE\n");
        assert_eq!(got, "REPOSITORY   TAG       IMAGE ID   CREATED   SIZE\n");
    }

    #[test]
    fn lines_without_tabs_end_a_block() {
        let got = TabWriter::new(0, 1).format("a\tb\nlonger\tc\nplain\nx\ty\n");
        assert_eq!(got, "a      b\nlonger c\nplain\nx y\n");
    }
}
