/* pjproject's compile-time settings for the phone (copied to
 * pjlib/include/pj/config_site.h by build.sh). Everything else keeps
 * pjproject's defaults; PJ_IOQUEUE_MAX_HANDLES and PJ_IOQUEUE_KEY_FREE_DELAY
 * in particular must stay as phone/sip/admission.py counts them. */

/* RLS and conference NOTIFYs of real size exceed the default 4000 bytes and
 * would be dropped; the layout self-test (phone/sip/layout.py) derives the
 * offsets in pjsip_rx_data that this moves. */
#define PJSIP_MAX_PKT_LEN 16000
