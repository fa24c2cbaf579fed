import java.net.*;
import java.io.*;

/** GET args[0] through the proxy in $HTTPS_PROXY (http://user:token@host:port); prints the status and body. */
public class Fetch {
  public static void main(String[] args) throws Exception {
    URI proxy = new URI(System.getenv("HTTPS_PROXY"));
    String[] userInfo = URLDecoder.decode(proxy.getRawUserInfo(), "UTF-8").split(":", 2);
    Authenticator.setDefault(new Authenticator() {
      @Override protected PasswordAuthentication getPasswordAuthentication() {
        return getRequestorType() == RequestorType.PROXY
            ? new PasswordAuthentication(userInfo[0], userInfo[1].toCharArray()) : null;
      }
    });
    Proxy p = new Proxy(Proxy.Type.HTTP, new InetSocketAddress(proxy.getHost(), proxy.getPort()));
    HttpURLConnection c = (HttpURLConnection) new URL(args[0]).openConnection(p);
    c.setConnectTimeout(15000);
    c.setReadTimeout(15000);
    System.out.println(c.getResponseCode());
    try (InputStream in = c.getInputStream()) { System.out.println(new String(in.readAllBytes(), "UTF-8")); }
  }
}
