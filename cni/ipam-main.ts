import { notImplemented } from '../lib/stub.js';

notImplemented('tabby-ipam', 'the CNI IPAM plugin comes with the block IPAM issue');
