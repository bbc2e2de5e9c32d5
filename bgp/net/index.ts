export { BgpListener, ConnectError, connectPeer, normalize, type ConnectOptions } from './transport.js';
export { SocketOptionError, setMd5, setMinTtl, setTtl, TCP_MD5SIG_MAXKEYLEN } from './sockopt.js';
