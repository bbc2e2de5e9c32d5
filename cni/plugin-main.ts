import { notImplemented } from '../lib/stub.js';

notImplemented('tabby', 'the CNI plugin comes with the netlink + CNI issue');
