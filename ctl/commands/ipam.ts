import { notImplementedGroup } from './not-implemented.js';

export const ipamCommand = notImplementedGroup('ipam', 'IP address management: show, check, release, configure', 'IPAM');
