/** Build identity shown by `tabbyctl version` and the agents' startup log. */
export const VERSION = '0.1.0';
