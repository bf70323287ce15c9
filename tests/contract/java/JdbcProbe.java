import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.util.Properties;

/**
 * Connects with the PostgreSQL JDBC driver exactly as a JVM client of the pipeline would: a JDBC
 * URL (with whatever parameters it carries) plus properties, then reports whether the session is
 * encrypted. Run with Java's source launcher: java -cp postgresql.jar JdbcProbe.java URL
 * [key=value ...]. The login comes from PROBE_USER and PROBE_PASSWORD (not argv, which other
 * processes can read). Exit 0 and "ssl=true version=TLSv1.3" on success; exit 1 and the
 * driver's own message on failure.
 */
public final class JdbcProbe {
  public static void main(String[] args) throws Exception {
    Properties properties = new Properties();
    properties.setProperty("user", System.getenv("PROBE_USER"));
    properties.setProperty("password", System.getenv("PROBE_PASSWORD"));
    properties.setProperty("connectTimeout", "10");
    for (int i = 1; i < args.length; i++) {
      String[] pair = args[i].split("=", 2);
      properties.setProperty(pair[0], pair[1]);
    }
    try (Connection connection = DriverManager.getConnection(args[0], properties);
        ResultSet row = connection.createStatement().executeQuery(
            "SELECT ssl, coalesce(version, '') FROM pg_stat_ssl WHERE pid = pg_backend_pid()")) {
      row.next();
      System.out.println("ssl=" + row.getBoolean(1) + " version=" + row.getString(2));
    } catch (java.sql.SQLException error) {
      System.out.println("error: " + error.getMessage());
      System.exit(1);
    }
  }
}
