package io.healthpipeline.connect.mqtt;

import java.io.IOException;
import java.net.InetAddress;
import java.net.Socket;
import java.util.Arrays;
import javax.net.ssl.SSLSocket;
import javax.net.ssl.SSLSocketFactory;

/** Sockets that speak TLS 1.2 or 1.3 only, whatever else the JVM would allow. */
final class MinimumTls12SocketFactory extends SSLSocketFactory {
  private static final String[] ALLOWED = {"TLSv1.3", "TLSv1.2"};
  private final SSLSocketFactory delegate;

  MinimumTls12SocketFactory(SSLSocketFactory delegate) {
    this.delegate = delegate;
  }

  private Socket restrict(Socket socket) {
    if (socket instanceof SSLSocket tls) {
      tls.setEnabledProtocols(Arrays.stream(tls.getSupportedProtocols())
          .filter(p -> Arrays.asList(ALLOWED).contains(p)).toArray(String[]::new));
    }
    return socket;
  }

  @Override
  public String[] getDefaultCipherSuites() {
    return delegate.getDefaultCipherSuites();
  }

  @Override
  public String[] getSupportedCipherSuites() {
    return delegate.getSupportedCipherSuites();
  }

  @Override
  public Socket createSocket() throws IOException {
    return restrict(delegate.createSocket());
  }

  @Override
  public Socket createSocket(Socket s, String host, int port, boolean autoClose)
      throws IOException {
    return restrict(delegate.createSocket(s, host, port, autoClose));
  }

  @Override
  public Socket createSocket(String host, int port) throws IOException {
    return restrict(delegate.createSocket(host, port));
  }

  @Override
  public Socket createSocket(String host, int port, InetAddress local, int localPort)
      throws IOException {
    return restrict(delegate.createSocket(host, port, local, localPort));
  }

  @Override
  public Socket createSocket(InetAddress host, int port) throws IOException {
    return restrict(delegate.createSocket(host, port));
  }

  @Override
  public Socket createSocket(InetAddress address, int port, InetAddress local, int localPort)
      throws IOException {
    return restrict(delegate.createSocket(address, port, local, localPort));
  }
}
