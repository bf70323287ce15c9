-- What components/snowflake.py (SnowflakeIngest) declares, as Snowflake SQL for DBAs. The
-- program is the source of truth; tests/test_sql_reference.py fails when the two disagree.
-- Run as the provider's role (snowflakeAdminRole, ACCOUNTADMIN by default).

CREATE WAREHOUSE INGEST
  WAREHOUSE_SIZE = XSMALL
  AUTO_SUSPEND = 60
  AUTO_RESUME = TRUE
  INITIALLY_SUSPENDED = TRUE;

CREATE ROLE INGEST;
-- First, so the administering role keeps managing what INGEST will own.
GRANT ROLE INGEST TO ROLE ACCOUNTADMIN;
GRANT USAGE, OPERATE ON WAREHOUSE INGEST TO ROLE INGEST;

CREATE DATABASE INGEST;
CREATE SCHEMA INGEST.INGEST;
GRANT OWNERSHIP ON SCHEMA INGEST.INGEST TO ROLE INGEST COPY CURRENT GRANTS;
GRANT OWNERSHIP ON DATABASE INGEST TO ROLE INGEST COPY CURRENT GRANTS;

-- A service user: no password, key-pair authentication only. The public key is the one-line
-- body of the PEM (no BEGIN/END lines); RSA_PUBLIC_KEY_2 takes the next key during rotation.
CREATE USER INGEST
  TYPE = SERVICE
  LOGIN_NAME = 'kafka_user'
  DEFAULT_WAREHOUSE = INGEST
  DEFAULT_NAMESPACE = 'INGEST.INGEST'
  DEFAULT_ROLE = INGEST
  DEFAULT_SECONDARY_ROLES = ()
  RSA_PUBLIC_KEY = '<public key body>';
GRANT ROLE INGEST TO USER INGEST;

-- Read-only for the dashboards (snowflakeReporting, on by default): a role that may use the
-- warehouse and read the tables the connector creates in INGEST.INGEST, now and later, and a
-- service user for it, key-pair authentication only. Granted by the administering role, which
-- needs MANAGE GRANTS for the future grant (ACCOUNTADMIN and SECURITYADMIN have it).
CREATE ROLE REPORTING;
GRANT ROLE REPORTING TO ROLE ACCOUNTADMIN;
GRANT USAGE ON WAREHOUSE INGEST TO ROLE REPORTING;
GRANT USAGE ON DATABASE INGEST TO ROLE REPORTING;
GRANT USAGE ON SCHEMA INGEST.INGEST TO ROLE REPORTING;
GRANT SELECT ON ALL TABLES IN SCHEMA INGEST.INGEST TO ROLE REPORTING;
GRANT SELECT ON FUTURE TABLES IN SCHEMA INGEST.INGEST TO ROLE REPORTING;
CREATE USER REPORTING
  TYPE = SERVICE
  LOGIN_NAME = 'reporting_user'
  DEFAULT_WAREHOUSE = INGEST
  DEFAULT_NAMESPACE = 'INGEST.INGEST'
  DEFAULT_ROLE = REPORTING
  DEFAULT_SECONDARY_ROLES = ()
  RSA_PUBLIC_KEY = '<reporting public key body>';
GRANT ROLE REPORTING TO USER REPORTING;
