//! Where each line of a section goes when it is written back.
//!
//! A section keeps its typed parts in separate fields (`connection`, `attributes`, `lines`),
//! so the order in which its lines came is recorded apart: a sequence of [`Slot`]s, one per
//! line. Writing walks the slots and takes the next attribute for each `Attr` slot and the
//! next kept line for each `Line` slot, so a section written unchanged comes out in its
//! original order, even when a peer put lines where RFC 8866 does not.
//!
//! After edits the counts may differ from the slots: lines added beyond the slots go after
//! the last `Line` slot (or before the first attribute), attributes added go after the last
//! `Attr` slot; slots left without an item are skipped. Every parsed section has exactly one
//! `Connection` slot, where its `c=` was or, without one, where RFC 8866 would put it, so a
//! connection set later lands in the right place.

/// One line of a section, by kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Slot {
    Origin,
    Name,
    Connection,
    Line,
    Attr,
}

/// One line to write: a slot resolved to an item of the section.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Item {
    Origin,
    Name,
    Connection,
    Line(usize),
    Attr(usize),
}

/// The order in which to write a section with `lines` kept lines, `attrs` attributes and a
/// connection or not.
pub(crate) fn plan(layout: &[Slot], lines: usize, attrs: usize, connection: bool) -> Vec<Item> {
    let last_line = layout.iter().rposition(|s| *s == Slot::Line);
    let first_attr = layout.iter().position(|s| *s == Slot::Attr);
    let last_attr = layout.iter().rposition(|s| *s == Slot::Attr);
    let mut out = Vec::with_capacity(layout.len().max(lines + attrs + 3));
    let (mut li, mut ai) = (0, 0);
    let mut connection_done = false;
    let flush_lines = |out: &mut Vec<Item>, li: &mut usize| {
        out.extend((*li..lines).map(Item::Line));
        *li = lines.max(*li);
    };
    for (i, slot) in layout.iter().enumerate() {
        if last_line.is_none() && first_attr == Some(i) {
            flush_lines(&mut out, &mut li);
        }
        match slot {
            Slot::Origin => out.push(Item::Origin),
            Slot::Name => out.push(Item::Name),
            Slot::Connection => {
                if connection && !connection_done {
                    out.push(Item::Connection);
                    connection_done = true;
                }
            }
            Slot::Line => {
                if li < lines {
                    out.push(Item::Line(li));
                    li += 1;
                }
            }
            Slot::Attr => {
                if ai < attrs {
                    out.push(Item::Attr(ai));
                    ai += 1;
                }
            }
        }
        if last_line == Some(i) {
            flush_lines(&mut out, &mut li);
        }
        if last_attr == Some(i) {
            out.extend((ai..attrs).map(Item::Attr));
            ai = attrs.max(ai);
        }
    }
    flush_lines(&mut out, &mut li);
    if connection && !connection_done {
        out.push(Item::Connection);
    }
    out.extend((ai..attrs).map(Item::Attr));
    out
}

/// Where a line type goes in RFC 8866 order, session level (§5) then media level.
fn rank(kind: char, media: bool) -> u8 {
    let order: &[char] = if media {
        &['i', 'c', 'b', 'k', 'a']
    } else {
        &[
            'o', 's', 'i', 'u', 'e', 'p', 'c', 'b', 't', 'r', 'z', 'k', 'a',
        ]
    };
    match order.iter().position(|k| *k == kind) {
        Some(p) => p as u8,
        // Unknown letters sort just before the attributes.
        None => order.len() as u8 - 1,
    }
}

/// Adds the `Connection` slot where RFC 8866 puts `c=` when the section has none:
/// before the first line that ranks after it. `kinds` are the kept lines' types in order.
pub(crate) fn add_connection_slot(layout: &mut Vec<Slot>, kinds: &[char], media: bool) {
    if layout.contains(&Slot::Connection) {
        return;
    }
    let c = rank('c', media);
    let mut line = 0;
    let at = layout.iter().position(|slot| {
        let kind = match slot {
            Slot::Origin => 'o',
            Slot::Name => 's',
            Slot::Connection => 'c',
            Slot::Attr => 'a',
            Slot::Line => {
                line += 1;
                kinds.get(line - 1).copied().unwrap_or('a')
            }
        };
        rank(kind, media) > c
    });
    layout.insert(at.unwrap_or(layout.len()), Slot::Connection);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unchanged_counts_follow_the_layout() {
        let layout = [
            Slot::Line,
            Slot::Attr,
            Slot::Line,
            Slot::Connection,
            Slot::Attr,
        ];
        assert_eq!(
            plan(&layout, 2, 2, true),
            [
                Item::Line(0),
                Item::Attr(0),
                Item::Line(1),
                Item::Connection,
                Item::Attr(1)
            ]
        );
    }

    #[test]
    fn extra_items_follow_their_kind() {
        let layout = [Slot::Connection, Slot::Line, Slot::Attr];
        assert_eq!(
            plan(&layout, 2, 3, false),
            [
                Item::Line(0),
                Item::Line(1),
                Item::Attr(0),
                Item::Attr(1),
                Item::Attr(2)
            ]
        );
        // No line slot: new lines go before the first attribute.
        let layout = [Slot::Connection, Slot::Attr];
        assert_eq!(
            plan(&layout, 1, 1, true),
            [Item::Connection, Item::Line(0), Item::Attr(0)]
        );
        // Missing items leave their slots empty.
        assert_eq!(plan(&layout, 0, 0, false), []);
    }

    #[test]
    fn connection_slot_goes_where_the_rfc_puts_c() {
        let mut l = vec![Slot::Origin, Slot::Name, Slot::Line, Slot::Attr];
        add_connection_slot(&mut l, &['t'], false);
        assert_eq!(
            l,
            [
                Slot::Origin,
                Slot::Name,
                Slot::Connection,
                Slot::Line,
                Slot::Attr
            ]
        );
        let mut l = vec![Slot::Line, Slot::Line, Slot::Attr];
        add_connection_slot(&mut l, &['i', 'b'], true);
        assert_eq!(l, [Slot::Line, Slot::Connection, Slot::Line, Slot::Attr]);
        let mut l = vec![];
        add_connection_slot(&mut l, &[], true);
        assert_eq!(l, [Slot::Connection]);
    }
}
