"""Snowflake objects the sink connector loads into, as the seed's setup SQL makes them:
warehouse, role, database and schema INGEST, and the key-pair-only service user; and the
read-only REPORTING role and service user the dashboards read with."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_snowflake as snowflake

from components.connector_keys import ConnectorKeys
from components.settings import SnowflakeSettings

__all__ = ["INGEST", "LOGIN_NAME", "REPORTING", "REPORTING_LOGIN_NAME", "SnowflakeIngest",
           "SnowflakeIngestArgs"]

INGEST = "INGEST"
"""Name of the warehouse, role, database, schema and user (upper case: the provider quotes
identifiers, and the seed's SQL means the unquoted, upper-cased INGEST)."""
LOGIN_NAME = "kafka_user"
"""The connector's snowflake.user.name."""
REPORTING = "REPORTING"
"""Name of the read-only role and of its service user."""
REPORTING_LOGIN_NAME = "reporting_user"
"""The dashboards' login name."""


@dataclass(frozen=True)
class SnowflakeIngestArgs:
    settings: SnowflakeSettings
    """The stack's snowflake* settings: account, names, warehouse, buffer."""
    keys: ConnectorKeys
    """The connector's key pairs, whose public halves go in the user's key slots."""
    protect: bool
    """Protect the INGEST database and schema from deletion (protectStatefulResources)."""
    reporting_keys: ConnectorKeys | None = None
    """The REPORTING user's key pairs (snowflakeReportingKey1/2); None declares no REPORTING
    role or user (snowflakeReporting false)."""


class SnowflakeIngest(pulumi.ComponentResource):
    """Everything in Snowflake the connector needs, managed by an explicit key-pair provider."""

    url: pulumi.Output[str]
    """`<org>-<account>.snowflakecomputing.com:443` (snowflake.url.name)."""
    user: pulumi.Output[str]
    """Login name of the service user (snowflake.user.name); secret, as the provider marks it."""
    database: pulumi.Output[str]
    schema: pulumi.Output[str]
    role: pulumi.Output[str]
    warehouse: pulumi.Output[str]
    private_key: pulumi.Output[str]
    """Secret: the connector's active PKCS#8 private key body (snowflake.private.key)."""

    def __init__(
        self, name: str, args: SnowflakeIngestArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("healthpipe:snowflake:SnowflakeIngest", name, None, opts)
        s = args.settings
        self.provider = snowflake.Provider(
            f"{name}-provider",
            organization_name=s.organization_name,
            account_name=s.account_name,
            user=s.admin_user,
            role=s.admin_role,
            # Explicit: without it the provider falls back to password authentication.
            authenticator="SNOWFLAKE_JWT",
            private_key=s.admin_private_key,
            private_key_passphrase=s.admin_private_key_passphrase,
            opts=pulumi.ResourceOptions(parent=self),
        )
        on_account = pulumi.ResourceOptions(parent=self, provider=self.provider)
        stateful = pulumi.ResourceOptions.merge(
            on_account, pulumi.ResourceOptions(protect=args.protect)
        )

        warehouse = snowflake.Warehouse(
            f"{name}-warehouse",
            name=INGEST,
            warehouse_size=s.warehouse_size,
            auto_suspend=s.warehouse_auto_suspend,
            auto_resume="true" if s.warehouse_auto_resume else "false",
            initially_suspended=True,
            comment="Kafka connector ingestion (health-pipeline)",
            opts=on_account,
        )
        role = snowflake.AccountRole(
            f"{name}-role",
            name=INGEST,
            comment="Owns the INGEST database; used by the Kafka connector",
            opts=on_account,
        )
        # The provider's role inherits INGEST first, so that it keeps reading, altering and
        # dropping the database and schema after their ownership moves to INGEST.
        role_to_admin = snowflake.GrantAccountRole(
            f"{name}-role-to-admin",
            role_name=role.name,
            parent_role_name=s.admin_role,
            opts=on_account,
        )
        snowflake.GrantPrivilegesToAccountRole(
            f"{name}-warehouse-usage",
            account_role_name=role.name,
            privileges=["OPERATE", "USAGE"],
            on_account_object=snowflake.GrantPrivilegesToAccountRoleOnAccountObjectArgs(
                object_type="WAREHOUSE", object_name=warehouse.name
            ),
            opts=on_account,
        )
        database = snowflake.Database(f"{name}-database", name=INGEST, opts=stateful)
        schema = snowflake.Schema(
            f"{name}-schema", database=database.name, name=INGEST, opts=stateful
        )
        schema_owner = snowflake.GrantOwnership(
            f"{name}-schema-ownership",
            account_role_name=role.name,
            outbound_privileges="COPY",
            on=snowflake.GrantOwnershipOnArgs(
                object_type="SCHEMA", object_name=pulumi.Output.concat(database.name, ".",
                                                                       schema.name)
            ),
            opts=pulumi.ResourceOptions.merge(
                on_account, pulumi.ResourceOptions(depends_on=[role_to_admin])
            ),
        )
        snowflake.GrantOwnership(
            f"{name}-database-ownership",
            account_role_name=role.name,
            outbound_privileges="COPY",
            on=snowflake.GrantOwnershipOnArgs(object_type="DATABASE", object_name=database.name),
            opts=pulumi.ResourceOptions.merge(
                on_account, pulumi.ResourceOptions(depends_on=[role_to_admin, schema_owner])
            ),
        )
        user, _ = _key_pair_user(
            f"{name}-", INGEST, LOGIN_NAME,
            "Kafka connector (health-pipeline); key-pair authentication only",
            warehouse, role, args.keys, on_account)
        self.reporting: Reporting | None = None
        if args.reporting_keys is not None:
            self.reporting = self._reporting(name, s.admin_role, args.reporting_keys, warehouse,
                                             database, schema, on_account)

        self.account = f"{s.organization_name}-{s.account_name}"
        """Snowflake's account identifier, `<org>-<account>`."""
        self.url = pulumi.Output.from_input(s.url)
        self.user = user.login_name
        self.database = database.name
        self.schema = schema.name
        self.role = role.name
        self.warehouse = warehouse.name
        self.private_key = args.keys.private_key
        self.register_outputs(
            {
                "url": self.url,
                "user": self.user,
                "database": self.database,
                "schema": self.schema,
                "role": self.role,
                "warehouse": self.warehouse,
                "privateKey": self.private_key,
            }
        )

    def _reporting(self, name: str, admin_role: str, keys: ConnectorKeys,
                   warehouse: snowflake.Warehouse, database: snowflake.Database,
                   schema: snowflake.Schema, on_account: pulumi.ResourceOptions) -> Reporting:
        """REPORTING: USAGE on the warehouse, database and schema and SELECT on the schema's
        current and future tables, nothing else; its service user signs in with a key pair
        only. The administering role (which holds MANAGE GRANTS: ACCOUNTADMIN by default)
        grants it all, and inherits the role so that it keeps managing it."""
        role = snowflake.AccountRole(
            f"{name}-reporting-role",
            name=REPORTING,
            comment="Reads INGEST.INGEST for dashboards (health-pipeline); read-only",
            opts=on_account,
        )
        snowflake.GrantAccountRole(
            f"{name}-reporting-role-to-admin",
            role_name=role.name,
            parent_role_name=admin_role,
            opts=on_account,
        )
        schema_name = pulumi.Output.concat(database.name, ".", schema.name)
        grants = {
            "warehouse-usage": snowflake.GrantPrivilegesToAccountRoleOnAccountObjectArgs(
                object_type="WAREHOUSE", object_name=warehouse.name),
            "database-usage": snowflake.GrantPrivilegesToAccountRoleOnAccountObjectArgs(
                object_type="DATABASE", object_name=database.name),
        }
        granted = [
            snowflake.GrantPrivilegesToAccountRole(
                f"{name}-reporting-{grant}", account_role_name=role.name, privileges=["USAGE"],
                on_account_object=on, opts=on_account)
            for grant, on in grants.items()]
        granted.append(snowflake.GrantPrivilegesToAccountRole(
            f"{name}-reporting-schema-usage", account_role_name=role.name, privileges=["USAGE"],
            on_schema=snowflake.GrantPrivilegesToAccountRoleOnSchemaArgs(schema_name=schema_name),
            opts=on_account))
        # SELECT on the tables there now and, through a future grant, on the ones the
        # connector creates (one per topic, as data arrives).
        tables = {
            "tables-select": snowflake.GrantPrivilegesToAccountRoleOnSchemaObjectArgs(
                all=snowflake.GrantPrivilegesToAccountRoleOnSchemaObjectAllArgs(
                    object_type_plural="TABLES", in_schema=schema_name)),
            "future-tables-select": snowflake.GrantPrivilegesToAccountRoleOnSchemaObjectArgs(
                future=snowflake.GrantPrivilegesToAccountRoleOnSchemaObjectFutureArgs(
                    object_type_plural="TABLES", in_schema=schema_name)),
        }
        granted += [
            snowflake.GrantPrivilegesToAccountRole(
                f"{name}-reporting-{grant}", account_role_name=role.name,
                privileges=["SELECT"], on_schema_object=on_tables, opts=on_account)
            for grant, on_tables in tables.items()]
        user, to_user = _key_pair_user(
            f"{name}-reporting-", REPORTING, REPORTING_LOGIN_NAME,
            "Dashboards (health-pipeline); read-only, key-pair authentication only",
            warehouse, role, keys, on_account)
        return Reporting(user=user.login_name, role=role.name,
                         private_key_pem=keys.private_key_pem, ready=(to_user, *granted))

    def stack_outputs(self) -> dict[str, pulumi.Output]:
        outputs = {"snowflakeUrl": self.url, "snowflakeUser": self.user,
                   "snowflakeDatabase": self.database, "snowflakeSchema": self.schema,
                   "snowflakeRole": self.role, "snowflakeWarehouse": self.warehouse,
                   "snowflakePrivateKey": self.private_key}
        if self.reporting is not None:
            outputs |= {"snowflakeReportingUser": self.reporting.user,
                        "snowflakeReportingRole": self.reporting.role,
                        "snowflakeReportingPrivateKey": self.reporting.private_key_pem}
        return outputs


def _key_pair_user(prefix: str, user_name: str, login_name: str, comment: str,
                   warehouse: snowflake.Warehouse, role: snowflake.AccountRole,
                   keys: ConnectorKeys, on_account: pulumi.ResourceOptions,
                   ) -> tuple[snowflake.ServiceUser, snowflake.GrantAccountRole]:
    """A SERVICE user (no password: key pair only) working in INGEST.INGEST as `role`, with the
    public keys of `keys` in its two slots, and `role` granted to it (`<prefix>user`,
    `<prefix>role-to-user`)."""
    user = snowflake.ServiceUser(
        f"{prefix}user",
        name=user_name,
        login_name=login_name,
        comment=comment,
        default_warehouse=warehouse.name,
        default_namespace=f"{INGEST}.{INGEST}",
        default_role=role.name,
        default_secondary_roles_option="NONE",
        disabled="false",
        rsa_public_key=keys.public_keys.get(1),
        rsa_public_key2=keys.public_keys.get(2),
        opts=on_account,
    )
    grant = snowflake.GrantAccountRole(f"{prefix}role-to-user", role_name=role.name,
                                       user_name=user.name, opts=on_account)
    return user, grant


@dataclass(frozen=True)
class Reporting:
    """The read-only identity the dashboards sign in with."""

    user: pulumi.Output[str]
    """Login name (reporting_user)."""
    role: pulumi.Output[str]
    """REPORTING."""
    private_key_pem: pulumi.Output[str]
    """Secret: the active slot's PKCS#8 PEM (snowflakeReportingActiveKey)."""
    ready: tuple[pulumi.Resource, ...]
    """The user's role grant and the role's grants: a client that checks its login on
    connecting (Metabase) waits for them."""
