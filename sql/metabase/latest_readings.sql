-- Metabase question "<vital sign>: latest reading per device" (dashboard "Patient vitals"):
-- each device's newest reading in one table the Snowflake sink loads. Lines starting with
-- "--" at the top are this note and are not sent; components/render/metabase.py fills in
-- {table} (<database>.<schema>.<TABLE>) and {measures} (the stream's value columns, from
-- RECORD_CONTENT, the Avro record the SQL processor wrote, as VARIANT).
SELECT
    RECORD_CONTENT:deviceId::STRING AS DEVICE_ID,
    TO_TIMESTAMP_NTZ(RECORD_CONTENT:createdTime::NUMBER) AS READING_TIME,
    {measures}
FROM {table}
QUALIFY ROW_NUMBER() OVER (
    PARTITION BY RECORD_CONTENT:deviceId::STRING
    ORDER BY RECORD_CONTENT:createdTime::NUMBER DESC
) = 1
ORDER BY DEVICE_ID
