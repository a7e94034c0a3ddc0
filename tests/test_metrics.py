"""The trigger-quality metrics of FORMATS.md on hand-made truths and event logs."""

from __future__ import annotations

import math

import pytest

from guide.errors import ScanLogError
from guide.metrics import Metrics, TruthRow, after_walk, after_walk_said, format_table, read_truth, score

DUR = {"en/a.ogg": 60.0, "en/b.ogg": 60.0}


def row(start, end, exhibit, intent="listen", visitor="v1"):
    return TruthRow(visitor=visitor, start=start, end=end, exhibit=exhibit, intent=intent)


def start(t, exhibit, visitor="v1", offset=None):
    e = {"visitor": visitor, "t": t, "event": "start", "exhibit": exhibit, "lang": "en",
         "track": f"en/{exhibit}.ogg"}
    if offset is not None:
        e["offset"] = offset
    return e


def end(t, exhibit, reason="finished", visitor="v1"):
    return {"visitor": visitor, "t": t, "event": "end", "exhibit": exhibit, "reason": reason}


def test_a_start_during_a_listen_row_is_a_hit_with_its_latency():
    m = score([row(10, 100, "a")], [start(14, "a"), end(74, "a")],
              durations=DUR, walk_end={"v1": 3600})
    assert (m.hits, m.listen_rows, m.recall) == (1, 1, 1.0)
    assert m.latencies == (4.0,)
    assert m.false_starts == 0 and m.interruptions == 0 and m.unwanted == 0
    assert m.hours == 1.0


def test_a_start_up_to_five_seconds_early_counts_with_zero_latency():
    m = score([row(10, 100, "a")], [start(6, "a")], durations=DUR, walk_end={"v1": 200})
    assert m.hits == 1 and m.latencies == (0.0,) and m.false_starts == 0


def test_a_start_exactly_five_seconds_early_as_written_counts_whatever_the_float_sum():
    # 5.2 - 5 is 0.20000000000000018 in binary floating point, after the start at 0.2
    m = score([row(5.2, 100, "a")], [start(0.2, "a"), end(60.2, "a")],
              durations=DUR, walk_end={"v1": 200})
    assert m.hits == 1 and m.latencies == (0.0,)
    assert m.false_starts == 0 and m.unwanted == 0
    early = score([row(5.2, 100, "a")], [start(0.19, "a"), end(60.19, "a")],
                  durations=DUR, walk_end={"v1": 200})
    assert early.false_starts == 1  # still a hit: it plays as the row begins


def test_a_track_ending_half_a_second_short_as_written_is_no_interruption():
    # 4.4 + 60 - 0.5 is 63.900000000000006 in binary floating point, after the end at 63.9
    m = score([row(0, 100, "a")], [start(4.4, "a"), end(63.9, "a")],
              durations=DUR, walk_end={"v1": 200})
    assert m.interruptions == 0
    cut = score([row(0, 100, "a")], [start(4.4, "a"), end(63.89, "a")],
                durations=DUR, walk_end={"v1": 200})
    assert cut.interruptions == 1


def test_the_slack_before_a_row_is_measured_to_the_microsecond():
    # metrics.span: 5.0000004 s early reads as the 5 s of the slack; 5.000004 s is beyond it
    within = score([row(10, 100, "a")], [start(4.9999996, "a")], durations=DUR, walk_end={"v1": 200})
    assert within.hits == 1 and within.false_starts == 0
    beyond = score([row(10, 100, "a")], [start(4.999996, "a")], durations=DUR, walk_end={"v1": 200})
    assert beyond.false_starts == 1  # (a hit still: it plays as the row begins)


def test_the_end_tolerance_is_measured_to_the_microsecond():
    # played 59.5 s of a track 60.0000004 s long: short by the 0.5 s tolerance as written
    assert score([row(0, 100, "a")], [start(0, "a"), end(59.5, "a")], durations={"en/a.ogg": 60.0000004},
                 walk_end={"v1": 200}).interruptions == 0
    # of one 60.000004 s long: 4 microseconds more than the tolerance short
    assert score([row(0, 100, "a")], [start(0, "a"), end(59.5, "a")], durations={"en/a.ogg": 60.000004},
                 walk_end={"v1": 200}).interruptions == 1


def test_a_start_as_the_row_ends_is_its_hit_and_a_start_of_another_exhibit_is_none():
    # FORMATS.md: a track of E starts "from 5 s before start up to end", the end included
    m = score([row(10, 100, "a")], [start(100, "a")], durations=DUR, walk_end={"v1": 200})
    assert m.hits == 1 and m.latencies == (90.0,) and m.false_starts == 0
    other = score([row(10, 100, "a")], [start(20, "b"), end(80, "b")], durations=DUR, walk_end={"v1": 200})
    assert other.hits == 0 and other.false_starts == 1 and other.unwanted == 60


def test_short_listen_rows_do_not_count_for_recall():
    m = score([row(10, 20, "a")], [], durations=DUR, walk_end={"v1": 100})
    assert m.listen_rows == 0


def test_a_listen_row_of_fifteen_seconds_as_written_counts_whatever_the_float_sum():
    # 142.7 - 127.7 is 14.999999999999986 in binary floating point
    m = score([row(127.7, 142.7, "a")], [start(126, "a")], durations=DUR, walk_end={"v1": 300})
    assert (m.hits, m.listen_rows) == (1, 1)
    assert score([row(127.7, 142.69, "a")], [], durations=DUR, walk_end={"v1": 300}).listen_rows == 0


def test_a_track_already_playing_when_the_row_begins_is_a_hit():
    # a wander row ends, the visitor comes back while it still plays
    truth = [row(10, 60, "a"), row(60, 80, "a", "wander"), row(80, 120, "a")]
    m = score(truth, [start(12, "a"), end(132, "a")],
              durations={"en/a.ogg": 120.0}, walk_end={"v1": 200})
    assert m.listen_rows == 2
    assert m.hits == 2 and m.latencies == (2.0, 0.0)


def test_a_track_that_ended_as_the_row_begins_is_not_already_playing():
    truth = [row(10, 40, "a"), row(40, 60, "a", "wander"), row(60, 100, "a")]
    m = score(truth, [start(12, "a"), end(60, "a", "stopped")], durations=DUR, walk_end={"v1": 200})
    assert m.listen_rows == 2 and m.hits == 1 and m.latencies == (2.0,)


def test_starts_while_walking_or_at_another_exhibit_are_false_starts_costing_their_play():
    truth = [row(10, 100, "a"), row(100, 103, "b", "glance")]
    events = [start(14, "a"), end(74, "a"), start(101, "b"), end(104, "b", "abandoned"),
              start(150, "b")]  # plays to the end of the walk
    m = score(truth, events, durations=DUR, walk_end={"v1": 180})
    assert m.false_starts == 2
    assert m.unwanted == pytest.approx(3 + 30)


def test_a_false_start_costs_what_it_played_and_nothing_after_the_walk():
    # faded out 0.4 s after it began; and one logged after the visitor's last scan
    events = [start(20, "b"), end(20.4, "b", "abandoned"), start(250, "b")]
    m = score([row(10, 100, "a")], events, durations=DUR, walk_end={"v1": 200})
    assert m.false_starts == 2 and m.unwanted == pytest.approx(0.4)


def test_a_second_start_of_the_same_exhibit_in_one_row_is_a_false_start():
    events = [start(14, "a"), end(18, "a", "abandoned"), start(25, "a"), end(85, "a")]
    m = score([row(10, 100, "a")], events, durations=DUR, walk_end={"v1": 100})
    # the first start is the hit; the second is false and costs its whole play,
    # and cutting the first inside its listen row was an interruption
    assert m.hits == 1 and m.false_starts == 1 and m.unwanted == pytest.approx(60)
    assert m.interruptions == 1


def test_a_start_with_no_end_before_the_next_start_is_still_scored():
    # a log cut short (a device that died and was not restarted to close its
    # track), or an end naming another exhibit: the start is still a start, and
    # its track stopped when the next one began (a device plays one at a time)
    events = [start(2, "b"), end(3, "a", "stopped"), start(12, "a"), end(30, "a", "stopped"),
              start(40, "a")]
    m = score([row(10, 100, "a")], events, durations=DUR, walk_end={"v1": 100})
    assert m.hits == 1 and m.latencies == (2.0,)
    assert m.false_starts == 2 and m.unwanted == pytest.approx(10 + 60)
    assert m.interruptions == 1  # the start at 12, cut at 30


def test_a_start_first_within_two_listen_rows_is_the_first_of_each():
    # it starts in the last second of one row and within the 5 s slack of the
    # next row of the same exhibit: a start after it in that next row is a second one
    truth = [row(100, 200, "a"), row(200, 203, "b", "glance"), row(203, 300, "a")]
    events = [start(199, "a"), end(201, "a", "stopped"), start(210, "a"), end(270, "a")]
    m = score(truth, events, durations=DUR, walk_end={"v1": 400})
    assert m.hits == 2 and m.false_starts == 1 and m.unwanted == pytest.approx(60)


def test_a_track_cut_while_its_visitor_listens_or_wanders_is_an_interruption():
    truth = [row(10, 40, "a"), row(40, 70, "a", "wander")]
    cut_in_wander = [start(12, "a"), end(50, "a", "interrupted")]
    m = score(truth, cut_in_wander, durations=DUR, walk_end={"v1": 100})
    assert m.interruptions == 1
    ends_in_time = [start(12, "a"), end(71.8, "a")]  # within 0.5 s of its duration
    assert score(truth, ends_in_time, durations=DUR, walk_end={"v1": 100}).interruptions == 0
    cut_after_leaving = [start(12, "a"), end(71, "a", "stopped")]
    assert score(truth, cut_after_leaving, durations=DUR, walk_end={"v1": 100}).interruptions == 0


def test_a_track_cut_as_a_row_begins_or_ends_is_cut_inside_it():
    truth = [row(10, 40, "a"), row(50, 90, "a")]
    events = [start(12, "a"), end(40, "a", "stopped"),  # cut as the first row ends
              start(45, "a"), end(50, "a", "stopped")]  # started in the slack, cut as the row begins
    assert score(truth, events, durations=DUR, walk_end={"v1": 100}).interruptions == 2


def test_a_resumed_track_is_judged_against_what_remained_of_it():
    truth = [row(0, 100, "a")]
    events = [start(10, "a", offset=30.0), end(40, "a")]  # 30 s left, played 30 s
    assert score(truth, events, durations=DUR, walk_end={"v1": 100}).interruptions == 0


def test_listen_rows_starting_after_the_walk_ends_are_the_ones_nothing_can_match_and_are_named():
    # one starting as the walk ends is not after it
    truth = [row(10, 100, "a"), row(100, 130, "b"), row(130, 160, "a"), row(0, 20, "a", visitor="v2")]
    assert after_walk(truth, {"v1": 129.5}) == [row(130, 160, "a")]  # v2 has no walk: left out
    assert after_walk(truth, {"v1": 130}) == []
    late = [row(130, 160, "a"), row(40, 60, "b", visitor="v2")]
    assert after_walk_said(late, "truth.csv", "scans") == (
        "2 listen rows of truth.csv start after the scans of their visitor end (v1 at a, v2 at b)")
    assert after_walk_said(late[:1], "truth.csv") == (
        "1 listen row of truth.csv starts after the walk of their visitor ends (v1 at a)")


def test_per_hour_figures_use_every_visitors_walk(tmp_path):
    truth = [row(10, 100, "a", visitor="v1"), row(10, 100, "a", visitor="v2")]
    events = [start(14, "a", "v1"), start(500, "b", "v2")]
    m = score(truth, events, durations=DUR, walk_end={"v1": 1800, "v2": 1800})
    assert m.hours == 1.0 and m.recall == 0.5
    assert m.per_hour(m.false_starts) == 1.0
    assert m.as_dict()["unwanted_audio_s_per_hour"] == pytest.approx(1300.0)


def figures() -> tuple[Metrics, Metrics]:
    # two scorings with figures that the rounding of each one shows
    m = Metrics(visitors=2, hours=7 / 9, listen_rows=3, hits=2, latencies=(1 / 3, 2 / 3, 1.0, 10 / 3),
                false_starts=1, interruptions=1, unwanted=12.345)
    n = Metrics(visitors=1, hours=0.25, listen_rows=1, hits=1, latencies=(7.0,),
                false_starts=0, interruptions=0, unwanted=0.0)
    return m, n


def test_latency_median_and_90th_percentile_interpolate_between_latencies():
    m, n = figures()
    assert m.latency_median == pytest.approx(5 / 6)  # between 2/3 and 1
    assert m.latency_p90 == pytest.approx(1 + 0.7 * (10 / 3 - 1))  # 70% of the way from the 3rd to the 4th
    assert (n.latency_median, n.latency_p90) == (7.0, 7.0)
    thirteen = Metrics(visitors=1, hours=1.0, listen_rows=13, hits=13,
                       latencies=tuple(x * x for x in range(13)), false_starts=0, interruptions=0, unwanted=0.0)
    assert thirteen.latency_p90 == pytest.approx(100 + 0.8 * (121 - 100))  # the 11th and 12th of 13
    assert m.recall == pytest.approx(2 / 3) and m.per_hour(m.false_starts) == pytest.approx(9 / 7)
    assert math.isnan(Metrics.pooled([]).per_hour(3))  # no time at all


def test_pooled_scorings_add_up_their_visitors_hours_rows_and_events():
    m, n = figures()
    assert Metrics.pooled(iter([m, n])) == Metrics(
        visitors=3, hours=7 / 9 + 0.25, listen_rows=4, hits=3, latencies=(*m.latencies, 7.0),
        false_starts=1, interruptions=1, unwanted=12.345)


def test_as_dict_rounds_each_figure_to_its_digits():
    m, _ = figures()
    assert m.as_dict() == {
        "visitors": 2, "visitor_hours": 0.778, "listen_rows": 3, "hits": 2, "recall": 0.6667,
        "latency_median_s": 0.83, "latency_p90_s": 2.63, "false_starts": 1, "false_starts_per_hour": 1.29,
        "interruptions": 1, "interruptions_per_hour": 1.286, "unwanted_audio_s": 12.3,
        "unwanted_audio_s_per_hour": 15.9}


def test_the_table_shows_every_metric_a_line_policies_side_by_side():
    m, n = figures()
    assert format_table({"engine": m, "naive": n}).splitlines() == [
        "                                      engine        naive",
        "visitors (visitor-hours)          2 (0.78 h)   1 (0.25 h)",
        "recall                           0.667 (2/3)  1.000 (1/1)",
        "latency median (s)                       0.8          7.0",
        "latency p90 (s)                          2.6          7.0",
        "false starts / visitor-hour          1.3 (1)      0.0 (0)",
        "interruptions / visitor-hour        1.29 (1)     0.00 (0)",
        "unwanted audio s / visitor-hour    16 (12 s)      0 (0 s)"]


def test_read_truth_names_the_line_of_a_bad_row(tmp_path):
    p = tmp_path / "truth.csv"
    p.write_text("visitor,start,end,exhibit,intent\nv1,1,5,a,listen\nv1,9,x,a,listen\n")
    with pytest.raises(ScanLogError, match=r"truth.csv:3: start and end must be seconds"):
        read_truth(p)
    p.write_text("visitor,start,end,exhibit,intent\nv1,1,5,a,stare\n")
    with pytest.raises(ScanLogError, match=r":2: intent 'stare' is not one of listen, wander, glance"):
        read_truth(p)
    p.write_text("who,when\n")
    with pytest.raises(ScanLogError, match=r":1: the header lacks visitor, start, end, exhibit, intent; "
                                           r"a ground truth starts with the line visitor,start,end,"
                                           r"exhibit,intent \(found who,when\)"):
        read_truth(p)
    p.write_text("")
    with pytest.raises(ScanLogError, match=r"truth.csv: the ground truth is empty; it needs the header "
                                           r"visitor,start,end,exhibit,intent$"):
        read_truth(p)
    p.write_text("\ufeff")  # a spreadsheet's export of an empty sheet: a BOM alone
    with pytest.raises(ScanLogError, match=r"truth.csv: the ground truth is empty"):
        read_truth(p)


@pytest.mark.parametrize("row, message", [
    ("v1,1,5,a", r":2: expected 5 fields, as the header \(visitor,start,end,exhibit,intent\), found 4"),
    ("v1,1,5,a,listen,extra", r":2: expected 5 fields, .* found 6"),
    ("v1,-3,5,a,listen", r":2: start=-3 is negative"),
    ("v1,1,1e12,a,listen", r":2: end=1e12 is more than a week after the walk began"),
    (",1,5,a,listen", r":2: the visitor is empty"),
    ("v1,1,5,zz,listen", r":2: exhibit 'zz' is not in the zone map"),
    ("v1,9,5,a,listen", r":2: end \(5\) is before start \(9\)$"),
    ('v1,1,5,"a\nb",listen', r":2: a quote \(\"\) opened on this line is not closed on it"),
])
def test_read_truth_refuses_rows_it_cannot_score_with_their_line(tmp_path, row, message):
    p = tmp_path / "truth.csv"
    p.write_text(f"visitor,start,end,exhibit,intent\n{row}\n")
    with pytest.raises(ScanLogError, match=message):
        read_truth(p, {"a", "b"})


def test_read_truth_accepts_a_spreadsheet_export(tmp_path):
    """A BOM, padded header names, CRLF line ends, extra columns and empty
    cells past the header's (FORMATS.md: accept more, never less)."""
    p = tmp_path / "truth.csv"
    p.write_bytes("\ufeffvisitor, start, end, exhibit, intent, note\r\n"
                  "v1,1,5,a,listen,ok\r\n\r\nv1,6,9,b,glance,\r\nv1,10,12,a,glance,,, \r\n".encode("utf-8"))
    assert read_truth(p) == [TruthRow(visitor="v1", start=1, end=5, exhibit="a", intent="listen"),
                             TruthRow(visitor="v1", start=6, end=9, exhibit="b", intent="glance"),
                             TruthRow(visitor="v1", start=10, end=12, exhibit="a", intent="glance")]
    p.write_text("visitor,start,end,exhibit,intent\nv1,nan,5,a,listen\n")
    with pytest.raises(ScanLogError, match=r"truth.csv:2: start and end must be seconds"):
        read_truth(p)
    p.write_bytes(b"visitor,start,end,exhibit,intent\nv1,1,5,\xff\xfe,listen\n")
    with pytest.raises(ScanLogError, match=r"truth.csv:2: not UTF-8 text \(the byte 0xFF, character 8"):
        read_truth(p)


def test_a_walk_with_no_listen_rows_reports_not_applicable_rather_than_nan():
    import json

    from guide.metrics import format_table

    m = score([], [{"visitor": "v1", "t": 3.0, "event": "start", "exhibit": "a", "track": "a.ogg"},
                   {"visitor": "v1", "t": 9.0, "event": "end", "exhibit": "a", "reason": "abandoned"}],
              durations={"a.ogg": 60.0}, walk_end={"v1": 600.0})
    d = m.as_dict()
    assert d["recall"] is None and d["latency_p90_s"] is None and d["false_starts"] == 1
    json.loads(json.dumps(d, allow_nan=False))  # strict JSON
    table = format_table({"engine": m})
    assert "n/a (0/0)" in table and "nan" not in table


@pytest.mark.parametrize("header, column, at", [
    ("visitor,start,end,exhibit,intent,start", "start", "2, 6"),
    ("visitor,start,end,exhibit,intent, exhibit", "exhibit", "4, 6"),
])
def test_a_truth_header_naming_a_column_twice_is_refused(tmp_path, header, column, at):
    """The last of the two was read, silently: a latency of 6 s became 725 s."""
    p = tmp_path / "truth.csv"
    p.write_text(f"{header}\nv1,10,50,a,listen,700\n")
    with pytest.raises(ScanLogError, match=rf"truth.csv:1: the header names the column {column} "
                                           rf"twice \(columns {at}\); a ground truth names each "
                                           r"column once: rename or delete all but one"):
        read_truth(p)
    p.write_text("visitor,start,end,exhibit,intent,note,note\nv1,10,50,a,listen,x,y\n")
    assert read_truth(p) == [row(10, 50, "a")]  # a column not read may be named twice


DIGITS = "9" * 5000


@pytest.mark.parametrize("text, message", [
    (f"v1,{DIGITS},5,a,listen", r":2: start and end must be seconds \(found '9{20}\.\.\. "
                                r"\(5000 characters\)', '5'\)$"),
    (f"v1,1{'0' * 300},5,a,listen", r":2: start=10{19}\.\.\. \(301 characters\) is more than a week"),
    (f"v1,1,5,a,{DIGITS}", r":2: intent '9{20}\.\.\. \(5000 characters\)' is not one of"),
    (f"v1,1,5,b{DIGITS},listen", r":2: exhibit 'b9{19}\.\.\. \(5001 characters\)' is not in the zone map"),
    (f"v1,1,5,a,listen,{DIGITS}", r":2: expected 5 fields, as the header \(visitor,start,end,exhibit,"
                                  r"intent\), found 6$"),
])
def test_a_long_truth_cell_is_echoed_cut_short(tmp_path, text, message):
    p = tmp_path / "truth.csv"
    p.write_text(f"visitor,start,end,exhibit,intent\n{text}\n")
    with pytest.raises(ScanLogError, match=message) as e:
        read_truth(p, {"a"})
    assert len(str(e.value)) < len(str(p)) + 200
    p.write_text(f"visitor,start,end,exhibit,{DIGITS}\n")
    with pytest.raises(ScanLogError, match=r":1: the header lacks intent; .* \(found visitor,start,end,"
                                           r"exhibit,9{50}\.\.\. \(5026 characters\)\)$"):
        read_truth(p)


@pytest.mark.parametrize("text, message", [
    ("v0\x0001,1,5,a,listen", r":2: the visitor 'v0\\x0001' holds the control character '\\x00'"),
    ("v1,1,5,a\x1b[2J,listen", r":2: the exhibit 'a\\x1b\[2J' holds the control character '\\x1b'"),
])
def test_a_truth_id_holding_a_control_character_is_refused(tmp_path, text, message):
    """As in the scan log: it would print raw wherever the id is named."""
    p = tmp_path / "truth.csv"
    p.write_text(f"visitor,start,end,exhibit,intent\n{text}\n")
    with pytest.raises(ScanLogError, match=message + r"; ids are printable text: delete it$"):
        read_truth(p)


def test_a_truth_row_written_twice_is_refused_naming_both_lines(tmp_path):
    """A copy-paste slip: scored as written, the stay counted twice in recall."""
    p = tmp_path / "truth.csv"
    p.write_text("visitor,start,end,exhibit,intent\nv1,10,50,a,listen\nv1,60,90,b,listen\n"
                 "v1,10.0,50,a,listen\n")
    with pytest.raises(ScanLogError, match=r"truth.csv:4: this row repeats line 2 \(v1 listen at a "
                                           r"from 10 to 50 s\), so the stay would be scored twice: "
                                           r"delete one of them$"):
        read_truth(p)


def test_rows_of_one_visitor_that_overlap_in_time_are_read_and_each_scored_by_its_definition(tmp_path):
    """FORMATS.md does not forbid them, and another generator writes them (a
    wander row still running as the next listen row begins; a glance aside
    within a listen): refused, a whole evaluation stopped on a reading rule
    of ours. Scored by hand: both listen rows hit (latencies 2 and 5 s), the
    glance at b changes nothing, and a's track ending in its wander row at
    its full length is no interruption."""
    p = tmp_path / "truth.csv"
    p.write_text("visitor,start,end,exhibit,intent\nv1,10,100,a,listen\nv1,40,45,b,glance\n"
                 "v1,95,140,a,wander\nv1,130,200,b,listen\n")
    truth = read_truth(p)
    assert [(r.start, r.exhibit, r.intent) for r in truth] == [
        (10, "a", "listen"), (40, "b", "glance"), (95, "a", "wander"), (130, "b", "listen")]
    m = score(truth, [start(12, "a"), end(72, "a"), start(135, "b"), end(195, "b")],
              durations=DUR, walk_end={"v1": 200})
    assert (m.listen_rows, m.hits, m.latencies) == (2, 2, (2, 5))
    assert (m.false_starts, m.interruptions, m.unwanted) == (0, 0, 0)


def test_rows_that_touch_and_rows_of_other_visitors_at_the_same_time_are_fine(tmp_path):
    p = tmp_path / "truth.csv"
    p.write_text("visitor,start,end,exhibit,intent\nv1,12,95,a,listen\nv1,95,140,a,wander\n"
                 "v2,12,95,a,listen\nv1,150,150,b,glance\nv1,150,154,b,glance\n")
    assert len(read_truth(p)) == 5
