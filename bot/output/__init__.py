"""Output of a command, from PTY bytes to what Slack, the CLI and files show. All pure.

* ``capture``: bounded head + tail (+ file spool) of the byte stream, in fixed memory;
* ``clean``: PTY bytes → the text a person would have read (no ANSI, no ``\\r``);
* ``cut``: what is shown where output is cut (whole lines only), for the capture's cuts and render's;
* ``redact``: secrets → ``[redacted:<kind>]``;
* ``views``: the seam, ``ExecResult`` → message view, full-output file, CLI text, in that one order
  (clean → cut → redact);
* ``render``: views → Slack Block Kit, within Slack's limits (docs/slack-limits.md).
"""
