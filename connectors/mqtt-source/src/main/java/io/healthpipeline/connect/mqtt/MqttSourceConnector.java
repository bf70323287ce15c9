package io.healthpipeline.connect.mqtt;

import java.util.List;
import java.util.Map;
import org.apache.kafka.common.config.Config;
import org.apache.kafka.common.config.ConfigDef;
import org.apache.kafka.connect.connector.Task;
import org.apache.kafka.connect.source.SourceConnector;

/**
 * Copies the messages of one or more MQTT topic filters into one Kafka topic, at least once:
 * each message is acknowledged to the broker only after Kafka has acknowledged its record.
 */
public final class MqttSourceConnector extends SourceConnector {
  private Map<String, String> props;

  @Override
  public void start(Map<String, String> props) {
    new MqttSourceConfig(props); // fails the connector on a bad setting, naming it
    this.props = Map.copyOf(props);
  }

  @Override
  public Class<? extends Task> taskClass() {
    return MqttSourceTask.class;
  }

  /** One task whatever tasks.max says: an MQTT client id is unique per broker. */
  @Override
  public List<Map<String, String>> taskConfigs(int maxTasks) {
    return List.of(props);
  }

  @Override
  public void stop() {
  }

  @Override
  public ConfigDef config() {
    return MqttSourceConfig.DEFINITION;
  }

  /** Connect's validate endpoint also reports a dead-letter topic the records cannot reach. */
  @Override
  public Config validate(Map<String, String> props) {
    Config config = super.validate(props);
    String problem = MqttSourceConfig.deadLetterProblem(props);
    if (problem != null) {
      config.configValues().stream()
          .filter(value -> value.name().equals(MqttSourceConfig.DEAD_LETTER_TOPIC))
          .forEach(value -> value.addErrorMessage(problem));
    }
    return config;
  }

  @Override
  public String version() {
    return MqttSourceConfig.version();
  }
}
