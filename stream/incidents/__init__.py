"""From alerts to pages: the incidents app (Faust), its pure incident state, maintenance
windows and the notify command with its sinks.
"""
