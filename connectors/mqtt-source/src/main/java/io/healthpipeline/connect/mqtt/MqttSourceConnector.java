package io.healthpipeline.connect.mqtt;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.apache.kafka.common.config.Config;
import org.apache.kafka.common.config.ConfigDef;
import org.apache.kafka.common.config.ConfigException;
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
    String problem = MqttSourceConfig.sharingProblem(props, tasksMax(props));
    if (problem != null) {
      throw new ConfigException(problem);
    }
    this.props = Map.copyOf(props);
  }

  private static int tasksMax(Map<String, String> props) {
    try {
      return Integer.parseInt(props.getOrDefault("tasks.max", "1").trim());
    } catch (NumberFormatException e) {
      return 1; // Connect itself refuses it
    }
  }

  @Override
  public Class<? extends Task> taskClass() {
    return MqttSourceTask.class;
  }

  /**
   * One task subscribing to the filters themselves with mqtt.client.id, exactly as before
   * tasks.max counted, when it is 1 (an existing persistent session is kept). Above 1, task i
   * of N joins the share group as <mqtt.client.id>-<i>, with a session of its own: the broker
   * gives each message to one member, and Connect spreads the tasks over its workers.
   */
  @Override
  public List<Map<String, String>> taskConfigs(int maxTasks) {
    if (maxTasks <= 1) {
      return List.of(props);
    }
    List<Map<String, String>> configs = new ArrayList<>(maxTasks);
    for (int i = 0; i < maxTasks; i++) {
      Map<String, String> config = new HashMap<>(props);
      config.put(MqttSourceConfig.TASK_INDEX, Integer.toString(i));
      config.put(MqttSourceConfig.TASK_COUNT, Integer.toString(maxTasks));
      configs.add(config);
    }
    return configs;
  }

  @Override
  public void stop() {
  }

  @Override
  public ConfigDef config() {
    return MqttSourceConfig.DEFINITION;
  }

  /**
   * Connect's validate endpoint also reports a dead-letter topic the records cannot reach, and
   * topic filters that cannot be shared among tasks.max tasks.
   */
  @Override
  public Config validate(Map<String, String> props) {
    Config config = super.validate(props);
    report(config, MqttSourceConfig.DEAD_LETTER_TOPIC, MqttSourceConfig.deadLetterProblem(props));
    report(config, MqttSourceConfig.TOPICS,
        MqttSourceConfig.sharingProblem(props, tasksMax(props)));
    return config;
  }

  private static void report(Config config, String key, String problem) {
    if (problem != null) {
      config.configValues().stream()
          .filter(value -> value.name().equals(key))
          .forEach(value -> value.addErrorMessage(problem));
    }
  }

  @Override
  public String version() {
    return MqttSourceConfig.version();
  }
}
