-- How each alert instance ended, and whether Alertmanager suppresses it (silenced or inhibited).
-- ended_by: 'resolved' (the source sent the resolve) or 'gone' (the pull stopped seeing it); NULL
-- while firing. Rows resolved before this migration keep NULL and count as 'resolved'.
-- suppressed_by: the silences and inhibiting alerts the pull reports for a firing instance; a
-- suppressed instance stops counting for the page but fires again once the pull sees it active.
ALTER TABLE alerts ADD COLUMN ended_by TEXT;
ALTER TABLE alerts ADD COLUMN suppressed_by TEXT;
