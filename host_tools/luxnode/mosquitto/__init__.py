"""mosquitto's file formats: mosquitto.conf, password_file, acl_file and psk_file.

Files written here are read by mosquitto 2 unchanged, and files written by
mosquitto_passwd or by hand for mosquitto are read here.
"""
