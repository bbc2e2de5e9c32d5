import { notImplementedGroup } from './not-implemented.js';

export const bgpCommand = notImplementedGroup('bgp', 'BGP speaker inspection: peers, routes', 'BGP');
