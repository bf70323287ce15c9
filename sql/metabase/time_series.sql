-- Metabase question "<vital sign>: last 24 hours per device" (dashboard "Patient vitals"), one
-- SELECT per measured value: components/render/metabase.py fills in {table}, {series} (the
-- device id, with the value's name when the stream has several, e.g. blood pressure), {field}
-- and {type}, joins the SELECTs with UNION ALL and orders the rows by time. createdTime is the
-- device's own timestamp in seconds since the epoch (the seed's `timestamp`).
SELECT
    TO_TIMESTAMP_NTZ(RECORD_CONTENT:createdTime::NUMBER) AS READING_TIME,
    {series} AS SERIES,
    RECORD_CONTENT:{field}::{type} AS READING
FROM {table}
WHERE RECORD_CONTENT:createdTime::NUMBER
    >= DATE_PART(EPOCH_SECOND, DATEADD(HOUR, -24, CURRENT_TIMESTAMP()))
